import { createApi, findApi, updateApi } from '../apis/apis.js';
import { type AuditEntryInput, appendAuditEntry, listAuditEntries } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { createApiKey, listApiKeys } from '../keys/api-keys.js';
import { billingPeriod } from '../plans/billing-period.js';
import type { Database, Queryable } from '../storage/database.js';
import { createTeam, findTeam } from '../teams/teams.js';

/** The slugs of what `tollgate start --demo` makes: the API, the plan, the team and the key's name. */
export const demoSlug = 'demo';

/** The demo plan: small enough to see limits at work, with overage so calls past the quota still pass. */
export const demoPlan = {
  slug: demoSlug,
  name: 'Demo',
  perSecond: 10,
  perHour: 1000,
  /** Calls per billing period. */
  monthlyCallQuota: 1000,
  overageAllowed: true,
} as const;

export interface DemoSetupOptions {
  /** Where the echo upstream listens now (its port changes at each start). */
  upstreamUrl: string;
  /** Make a key even though the team has a live demo key (whose secret cannot be shown again). */
  newKey?: boolean;
}

export interface DemoSetup {
  api: { id: string; slug: string; created: boolean; upstreamChanged: boolean };
  plan: { id: string; slug: string; created: boolean };
  team: { id: string; slug: string; created: boolean; subscribed: boolean };
  operator: { id: string; email: string };
  /** The key made by this start, with its secret (shown once); undefined when an earlier one was kept. */
  newKey: { id: string; prefix: string; secret: string } | undefined;
  /** The live demo keys made before, by prefix (their secrets were shown when they were made). */
  earlierKeyPrefixes: string[];
  /** The routing configuration version to announce once this has committed; undefined: routing unchanged. */
  configVersion: number | undefined;
}

const details = { demo: true, via: 'tollgate start --demo' };

function systemEntry(entry: Omit<AuditEntryInput, 'actorLabel'>): AuditEntryInput {
  return { actorLabel: 'system', ...entry, details: { ...details, ...entry.details } };
}

async function firstOperator(tx: Queryable): Promise<{ id: string; email: string }> {
  const result = await tx.query<{ id: string; email: string }>(
    `SELECT id, email FROM users WHERE installation_role = 'admin' AND deleted_at IS NULL ORDER BY created_at, id LIMIT 1`,
  );
  const row = result.rows[0];
  if (!row) {
    throw new TollgateError('not_found', 'the demo needs an operator account to own its team, and there is none yet', {
      hint: 'run tollgate start with the API (not --only gateway) once; it creates the first operator',
    });
  }
  return row;
}

async function ensurePlan(tx: Queryable): Promise<DemoSetup['plan']> {
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO plans (slug, name, rate_limit_per_second, rate_limit_per_hour, monthly_call_quota, overage_allowed)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (slug, version) DO NOTHING RETURNING id`,
    [
      demoPlan.slug,
      demoPlan.name,
      demoPlan.perSecond,
      demoPlan.perHour,
      demoPlan.monthlyCallQuota,
      demoPlan.overageAllowed,
    ],
  );
  const created = inserted.rows[0];
  if (created) {
    await appendAuditEntry(
      tx,
      systemEntry({
        action: 'plan.created',
        outcome: 'success',
        targetType: 'plan',
        targetId: created.id,
        details: {
          slug: demoPlan.slug,
          rate_limit_per_second: demoPlan.perSecond,
          rate_limit_per_hour: demoPlan.perHour,
          monthly_call_quota: demoPlan.monthlyCallQuota,
          overage_allowed: demoPlan.overageAllowed,
        },
      }),
    );
    return { id: created.id, slug: demoPlan.slug, created: true };
  }
  // Kept as it is: an operator may have changed the demo plan since.
  // Its newest version (plans are versioned since 0016_plan_catalog).
  const existing = await tx.query<{ id: string }>(
    'SELECT id FROM plans WHERE slug = $1 ORDER BY version DESC LIMIT 1',
    [demoPlan.slug],
  );
  return { id: (existing.rows[0] as { id: string }).id, slug: demoPlan.slug, created: false };
}

async function ensureTeam(
  tx: Queryable,
  operator: { id: string },
  planId: string,
  now: Date,
): Promise<DemoSetup['team']> {
  let team = await findTeam(tx, demoSlug);
  const created = team === undefined;
  if (!team) {
    team = await createTeam(tx, { name: 'Demo', slug: demoSlug, creatorUserId: operator.id });
    await appendAuditEntry(
      tx,
      systemEntry({
        action: 'team.created',
        outcome: 'success',
        targetType: 'team',
        targetId: team.id,
        teamId: team.id,
        details: { slug: team.slug, owner_user_id: operator.id },
      }),
    );
  }
  // A team with a live subscription keeps it (GET /v1/teams/{team}/usage shows which plan it is on).
  const live = await tx.query('SELECT 1 FROM subscriptions WHERE team_id = $1 AND status <> $2', [team.id, 'canceled']);
  let subscribed = false;
  if (live.rowCount === 0) {
    const anchor = await tx.query<{ billing_anchor_at: Date }>('SELECT billing_anchor_at FROM teams WHERE id = $1', [
      team.id,
    ]);
    const period = billingPeriod((anchor.rows[0] as { billing_anchor_at: Date }).billing_anchor_at, now);
    const subscription = await tx.query<{ id: string }>(
      `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
       VALUES ($1, $2, 'active', 'USD', 'month', $3, $4) RETURNING id`,
      [team.id, planId, period.start, period.end],
    );
    await appendAuditEntry(
      tx,
      systemEntry({
        action: 'subscription.created',
        outcome: 'success',
        targetType: 'subscription',
        targetId: (subscription.rows[0] as { id: string }).id,
        teamId: team.id,
        details: { plan: demoPlan.slug },
      }),
    );
    subscribed = true;
  }
  return { id: team.id, slug: team.slug, created, subscribed };
}

/** Whether the API was made by an earlier `--demo` (its creation is audited on the demo team). */
async function madeByDemo(tx: Queryable, apiId: string, teamId: string): Promise<boolean> {
  const entries = await listAuditEntries(tx, { teamId, action: 'api.created', limit: 1000 });
  return entries.some((entry) => entry.targetId === apiId && entry.details.demo === true);
}

async function ensureApi(
  tx: Queryable,
  input: { upstreamUrl: string; teamId: string; operatorId: string },
): Promise<{ api: DemoSetup['api']; configVersion: number | undefined }> {
  const existing = await findApi(tx, demoSlug);
  if (!existing) {
    const change = await createApi(tx, {
      slug: demoSlug,
      name: 'Demo (echo upstream)',
      upstreams: [input.upstreamUrl],
      timeoutMs: 10_000,
      createdByUserId: input.operatorId,
    });
    await appendAuditEntry(
      tx,
      systemEntry({
        action: 'api.created',
        outcome: 'success',
        targetType: 'api',
        targetId: change.api.id,
        // On the demo team, so a later start can tell its own API from an operator's.
        teamId: input.teamId,
        details: { slug: change.api.slug, upstreams: change.api.upstreams, config_version: change.configVersion },
      }),
    );
    const api = { id: change.api.id, slug: change.api.slug, created: true, upstreamChanged: true };
    return { api, configVersion: change.configVersion };
  }
  if (!(await madeByDemo(tx, existing.id, input.teamId))) {
    throw new TollgateError(
      'slug_taken',
      'an API with the slug "demo" exists that tollgate start --demo did not make',
      {
        hint: 'start without --demo, or rename that API (tollgate apis update demo --slug ...)',
      },
    );
  }
  if (existing.upstreams.length === 1 && existing.upstreams[0] === input.upstreamUrl) {
    return {
      api: { id: existing.id, slug: existing.slug, created: false, upstreamChanged: false },
      configVersion: undefined,
    };
  }
  const change = await updateApi(tx, existing.id, { upstreams: [input.upstreamUrl] });
  await appendAuditEntry(
    tx,
    systemEntry({
      action: 'api.updated',
      outcome: 'success',
      targetType: 'api',
      targetId: existing.id,
      teamId: input.teamId,
      details: {
        slug: existing.slug,
        changed: change.changed,
        upstreams: change.api.upstreams,
        config_version: change.configVersion,
      },
    }),
  );
  return {
    api: { id: existing.id, slug: existing.slug, created: false, upstreamChanged: true },
    configVersion: change.configVersion,
  };
}

/**
 * Sets up the demo of `tollgate start --demo` in one transaction: the `demo` plan, the `demo` team
 * owned by the first operator and subscribed to it, the `demo` API pointing at the echo upstream
 * (re-pointed at each start, as the echo's port changes) and, the first time or when asked, a key
 * for the team limited to that API. Reuses whatever an earlier demo made; never touches other APIs.
 * Every change is audited (actor `system`, details.demo).
 */
export async function setUpDemo(database: Database, options: DemoSetupOptions): Promise<DemoSetup> {
  const now = new Date();
  return database.transaction(async (tx) => {
    const operator = await firstOperator(tx);
    const plan = await ensurePlan(tx);
    const team = await ensureTeam(tx, operator, plan.id, now);
    const { api, configVersion } = await ensureApi(tx, {
      upstreamUrl: options.upstreamUrl,
      teamId: team.id,
      operatorId: operator.id,
    });
    const earlier = (await listApiKeys(tx, team.id)).filter(
      (key) =>
        key.name === demoSlug &&
        key.revokedAt === null &&
        (key.expiresAt === null || key.expiresAt.getTime() > now.getTime()),
    );
    let newKey: DemoSetup['newKey'];
    if (earlier.length === 0 || options.newKey) {
      const created = await createApiKey(tx, {
        teamId: team.id,
        name: demoSlug,
        apiIds: [api.id],
      });
      await appendAuditEntry(
        tx,
        systemEntry({
          action: 'key.created',
          outcome: 'success',
          targetType: 'api_key',
          targetId: created.summary.id,
          teamId: team.id,
          details: { prefix: created.summary.prefix, mode: created.summary.mode, apis: [api.id] },
        }),
      );
      newKey = { id: created.summary.id, prefix: created.summary.prefix, secret: created.key };
    }
    return {
      api,
      plan,
      team,
      operator,
      newKey,
      earlierKeyPrefixes: earlier.map((key) => key.prefix),
      configVersion,
    };
  });
}
