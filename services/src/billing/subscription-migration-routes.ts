import type { Context } from 'koa';
import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import { isPlanSlug } from '../plans/plan-catalog.js';
import { migratePlanSubscriptions, type PlanMigrationResult } from './subscription-migration.js';
import type { SubscriptionActor, SubscriptionServiceOptions } from './subscriptions.js';

export interface PlanMigrationRouteOptions extends SubscriptionServiceOptions {
  signingKey: Buffer;
}

const versionSchema = z.number().int().min(1).max(999_999_999);

const migrateBody = z
  .object({
    from_version: versionSchema.optional().describe('only subscribers of this version; default: every older version'),
    to_version: versionSchema.optional().describe('the version they move to; default: the newest'),
    at: z
      .enum(['period_end', 'now'])
      .default('period_end')
      .describe('period_end: at each current period end, as a pending change; now: at once, prorated'),
    dry_run: z.boolean().default(false).describe('answer what would happen; write nothing'),
  })
  .strict();

const prorationSchema = z
  .object({ credit_minor: z.number().int(), charge_minor: z.number().int(), net_minor: z.number().int() })
  .describe('minor units: the unused old fee credited, the new fee charged for the rest of the period');

const migrationSchema = z.object({
  run_id: z.string().nullable().describe('names the run in the audit log (plan.migrated); null for a dry run'),
  plan: z.string(),
  from_versions: z.array(z.number().int()),
  to_version: z.number().int(),
  at: z.enum(['period_end', 'now']),
  dry_run: z.boolean(),
  migrated: z.array(
    z.object({
      subscription_id: z.string(),
      team_id: z.string(),
      from_version: z.number().int(),
      to_version: z.number().int(),
      currency: z.string().describe('the subscription keeps its currency and interval'),
      at: z.string().describe('when the subscription is on the new version: now, or its current period end'),
      proration: prorationSchema.nullable().optional().describe('at "now" only; null during a trial'),
    }),
  ),
  skipped: z.array(
    z.object({
      subscription_id: z.string(),
      team_id: z.string(),
      from_version: z.number().int(),
      reason: z.enum([
        'price_not_offered',
        'pending_change',
        'payment_required',
        'already_scheduled',
        'checkout_required',
        'provider_error',
        'changed_meanwhile',
      ]),
      message: z.string(),
    }),
  ),
});

export function planMigrationBody(result: PlanMigrationResult) {
  return {
    run_id: result.runId,
    plan: result.plan,
    from_versions: result.fromVersions,
    to_version: result.toVersion,
    at: result.at,
    dry_run: result.dryRun,
    migrated: result.migrated.map((entry) => ({
      subscription_id: entry.subscriptionId,
      team_id: entry.teamId,
      from_version: entry.fromVersion,
      to_version: entry.toVersion,
      currency: entry.currency,
      at: entry.at.toISOString(),
      ...(entry.proration === undefined
        ? {}
        : {
            proration: entry.proration && {
              credit_minor: entry.proration.creditMinor,
              charge_minor: entry.proration.chargeMinor,
              net_minor: entry.proration.netMinor,
            },
          }),
    })),
    skipped: result.skipped.map((entry) => ({
      subscription_id: entry.subscriptionId,
      team_id: entry.teamId,
      from_version: entry.fromVersion,
      reason: entry.reason,
      message: entry.message,
    })),
  };
}

const params = (ctx: Context) => (ctx as unknown as { params: Record<string, string> }).params;

/** `POST /v1/plans/:plan/migrate`: operators (plans:manage) move subscribers to a newer version. */
export function planMigrationRoutes(options: PlanMigrationRouteOptions) {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/plans/:plan/migrate',
      operationId: 'migratePlanSubscriptions',
      summary: 'Move subscribers of older versions of a plan to a newer one (plans:manage, operators)',
      description:
        'Every live subscription on from_version (default: every older version) moves to to_version (default: the newest) in its own currency and interval: at its period end (at: "period_end", a pending change) or now, prorated like an upgrade. Each moves in its own transaction; one that cannot is listed in skipped with a stable reason (price_not_offered, pending_change, payment_required, already_scheduled, checkout_required, provider_error, changed_meanwhile). An unknown plan is 404 not_found; a version that does not exist or to_version <= from_version is 400 validation_failed; an archived plan is 409 plan_archived. dry_run answers the same and writes nothing. Running it again moves nothing more.',
      tags: ['plans'],
      body: migrateBody,
      responses: { 200: { description: 'What moved and what was skipped', schema: migrationSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticate(ctx, options);
        await authorize(ctx, { database: options.database, caller, permission: 'plans:manage' });
        const slug = (params(ctx).plan ?? '').toLowerCase();
        if (!isPlanSlug(slug)) {
          throw new TollgateError('not_found', `no plan ${slug}`, { hint: 'tollgate plans list shows them' });
        }
        const { actorUserId, actorLabel, ip, userAgent, requestId } = callerAudit(ctx, caller, {
          action: 'plan.migrated',
          outcome: 'success',
        });
        const actor: SubscriptionActor = {
          actorLabel,
          ...(actorUserId === undefined ? {} : { actorUserId }),
          ...(ip === undefined ? {} : { ip }),
          ...(userAgent === undefined ? {} : { userAgent }),
          ...(requestId === undefined ? {} : { requestId }),
        };
        const result = await migratePlanSubscriptions(options, {
          plan: slug,
          fromVersion: body.from_version,
          toVersion: body.to_version,
          at: body.at,
          dryRun: body.dry_run,
          actor,
        });
        ctx.body = planMigrationBody(result);
      },
    }),
  ];
}
