import { randomUUID } from 'node:crypto';
import { appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { findPlan, type Plan, planPrice } from '../plans/plan-catalog.js';
import type { PricedPlan, ProviderSubscriptionState } from './billing-provider.js';
import { prorateMinor } from './pricing.js';
import type { Currency } from './pricing-schema.js';
import {
  insertProration,
  providerOf,
  recordChange,
  rowById,
  type SubscriptionActor,
  SubscriptionInvalidations,
  type SubscriptionRow,
  type SubscriptionServiceOptions,
} from './subscriptions.js';

/**
 * Moving the subscribers of older versions of a plan to a newer one (docs/plans.md "Versions and the
 * migration policy"), as Stripe Billing, Lago or Chargebee let an operator do after a price change.
 * Each subscription moves in its own transaction through the subscription state machine's own
 * recordChange (audit, `subscription.updated` webhook, gateway invalidation); a subscription that
 * cannot move is skipped with a stable reason and the run goes on. A run id names the run: the
 * provider's idempotency keys derive from it and the subscription id, and the `plan.migrated`
 * audit entry summarising the run carries it.
 */

/** `period_end`: a pending change at the current period end; `now`: at once, prorated like an upgrade. */
export type MigrationTiming = 'period_end' | 'now';

/** Why a subscription was not moved. Stable: scripts may switch on them. */
export type MigrationSkipReason =
  /** The target version has no price in the subscription's currency and interval. */
  | 'price_not_offered'
  /** A change to another plan (or another interval) already waits for the period end. */
  | 'pending_change'
  /** The subscription is unpaid: it moves once paid. */
  | 'payment_required'
  /** A period_end move to the target version is already scheduled. */
  | 'already_scheduled'
  /** Free, without a provider subscription, and the target costs money: the team must check out. */
  | 'checkout_required'
  /** The billing provider refused the change (the message says why); retry the run. */
  | 'provider_error'
  /** The subscription changed between the plan and the move (canceled, changed plan). */
  | 'changed_meanwhile';

export interface MigratePlanInput {
  /** Slug of the plan. */
  plan: string;
  /** Only this older version; absent: every version older than the target. */
  fromVersion?: number | undefined;
  /** Absent: the newest version. */
  toVersion?: number | undefined;
  at: MigrationTiming;
  /** Decide everything, write nothing, call no provider. */
  dryRun: boolean;
  actor: SubscriptionActor;
}

/** minor units, e.g. cents: the unused old fee credited, the new fee for the rest of the period charged. */
export interface MigrationProration {
  creditMinor: number;
  chargeMinor: number;
  netMinor: number;
}

export interface MigratedSubscription {
  subscriptionId: string;
  teamId: string;
  fromVersion: number;
  toVersion: number;
  /** The subscription's currency, which it keeps (the proration's). */
  currency: Currency;
  /** When the subscription is on the target version: now, or its current period end. */
  at: Date;
  /** `now` only: null during a trial (nothing is prorated). */
  proration?: MigrationProration | null;
}

export interface SkippedSubscription {
  subscriptionId: string;
  teamId: string;
  fromVersion: number;
  reason: MigrationSkipReason;
  message: string;
}

export interface PlanMigrationResult {
  /** Names the run in the audit log and the provider's idempotency keys; null for a dry run. */
  runId: string | null;
  plan: string;
  fromVersions: number[];
  toVersion: number;
  at: MigrationTiming;
  dryRun: boolean;
  migrated: MigratedSubscription[];
  skipped: SkippedSubscription[];
}

const invalid = (message: string) => new TollgateError('validation_failed', message);

/** The target version and the versions to move from; refuses the whole request when they make no sense. */
async function resolveVersions(
  options: SubscriptionServiceOptions,
  input: MigratePlanInput,
): Promise<{ target: Plan; fromVersions: number[] }> {
  const newest = await findPlan(options.database, input.plan);
  if (!newest) {
    throw new TollgateError('not_found', `no plan ${input.plan}`, { hint: 'tollgate plans list shows them' });
  }
  const last = newest.latestVersion;
  for (const [field, version] of [
    ['from_version', input.fromVersion],
    ['to_version', input.toVersion],
  ] as const) {
    if (version !== undefined && (version < 1 || version > last)) {
      throw invalid(`${field}: plan ${newest.slug} has no version ${version} (its versions are 1 to ${last})`);
    }
  }
  const toVersion = input.toVersion ?? last;
  if (input.fromVersion !== undefined && toVersion <= input.fromVersion) {
    throw invalid(
      `to_version: ${toVersion} is not newer than from_version ${input.fromVersion}; subscribers only move forward`,
    );
  }
  if (toVersion === 1) throw invalid(`to_version: version 1 of ${newest.slug} has no older version to move from`);
  const target = toVersion === last ? newest : await findPlan(options.database, newest.slug, { version: toVersion });
  if (!target) throw invalid(`to_version: plan ${newest.slug} has no version ${toVersion}`);
  if (target.archivedAt) {
    throw new TollgateError(
      'plan_archived',
      `the plan ${target.slug} is archived: it takes no new subscriptions, migrated ones included`,
      { hint: 'subscribers of an archived plan keep their version' },
    );
  }
  const fromVersions =
    input.fromVersion === undefined
      ? Array.from({ length: toVersion - 1 }, (_, index) => index + 1)
      : [input.fromVersion];
  return { target, fromVersions };
}

type Decision =
  | { kind: 'skip'; reason: MigrationSkipReason; message: string }
  | { kind: 'move'; price: PricedPlan; effectiveAt: Date };

/** What happens to one subscription, from its row as it is now. */
function decide(
  options: SubscriptionServiceOptions,
  row: SubscriptionRow,
  target: Plan,
  at: MigrationTiming,
  now: Date,
): Decision {
  if (row.status === 'unpaid') {
    return { kind: 'skip', reason: 'payment_required', message: 'the subscription is unpaid; it moves once paid' };
  }
  // An interval switch waiting for the period end (pending_interval, migration 0027) is a change of its own.
  const pendingInterval = (row as { pending_interval?: string | null }).pending_interval ?? null;
  if (
    row.pending_plan_id &&
    (row.pending_plan_slug !== target.slug || (pendingInterval !== null && pendingInterval !== row.billing_interval))
  ) {
    return {
      kind: 'skip',
      reason: 'pending_change',
      message: `a change to ${row.pending_plan_slug} version ${row.pending_plan_version} waits for ${row.pending_change_at?.toISOString()}`,
    };
  }
  if (row.pending_plan_id === target.id && at === 'period_end') {
    return {
      kind: 'skip',
      reason: 'already_scheduled',
      message: `already moves to version ${target.version} at ${row.pending_change_at?.toISOString()}`,
    };
  }
  const price = planPrice(target, row.currency, row.billing_interval);
  if (!price) {
    return {
      kind: 'skip',
      reason: 'price_not_offered',
      message: `version ${target.version} of ${target.slug} has no ${row.billing_interval === 'year' ? 'annual' : 'monthly'} price in ${row.currency}`,
    };
  }
  if (
    Number(row.amount_minor) === 0 &&
    price.amountMinor > 0 &&
    !row.provider_subscription_id &&
    options.provider.name !== 'manual'
  ) {
    return {
      kind: 'skip',
      reason: 'checkout_required',
      message: `the subscription is free and version ${target.version} costs money: the team subscribes through a checkout`,
    };
  }
  return {
    kind: 'move',
    price: {
      planId: target.id,
      planSlug: target.slug,
      planName: target.name,
      currency: row.currency,
      interval: row.billing_interval,
      amountMinor: price.amountMinor,
      trialDays: 0,
    },
    effectiveAt: at === 'now' ? now : row.current_period_end,
  };
}

/** The proration of a move now, as an upgrade prorates: none during a trial. */
function prorate(row: SubscriptionRow, newAmountMinor: number, now: Date): MigrationProration | null {
  const start = row.current_period_start.getTime();
  const end = row.current_period_end.getTime();
  if (row.status === 'trialing' || end <= start) return null;
  const at = Math.min(Math.max(now.getTime(), start), end);
  const credit = prorateMinor(BigInt(row.amount_minor), end - at, end - start);
  const charge = prorateMinor(BigInt(newAmountMinor), end - at, end - start);
  return { creditMinor: Number(credit), chargeMinor: Number(charge), netMinor: Number(charge - credit) };
}

/**
 * Moves every live subscription on the chosen older versions of a plan to the target version, in its
 * own currency and interval: at its period end (a pending change the renewal applies) or now, with
 * proration. A dry run answers the same without writing or calling the provider. Running it again
 * moves nothing more: subscriptions on the target are not on an older version any more, and those
 * scheduled to it are skipped as `already_scheduled`.
 */
export async function migratePlanSubscriptions(
  options: SubscriptionServiceOptions,
  input: MigratePlanInput,
): Promise<PlanMigrationResult> {
  const { database } = options;
  const clock = options.now ?? (() => new Date());
  const { target, fromVersions } = await resolveVersions(options, input);
  const runId = input.dryRun ? null : randomUUID();
  const result: PlanMigrationResult = {
    runId,
    plan: target.slug,
    fromVersions,
    toVersion: target.version,
    at: input.at,
    dryRun: input.dryRun,
    migrated: [],
    skipped: [],
  };
  const candidates = await database.query<{ id: string }>(
    `SELECT s.id FROM subscriptions s JOIN plans p ON p.id = s.plan_id
     WHERE p.slug = $1 AND p.version = ANY($2::int[]) AND s.status <> 'canceled'
     ORDER BY s.created_at, s.id`,
    [target.slug, fromVersions],
  );
  const invalidations = new SubscriptionInvalidations();
  for (const { id } of candidates.rows) {
    const now = clock();
    const row = await rowById(database, id);
    if (!row || row.status === 'canceled') continue;
    const skip = (reason: MigrationSkipReason, message: string) =>
      result.skipped.push({
        subscriptionId: row.id,
        teamId: row.team_id,
        fromVersion: row.plan_version,
        reason,
        message,
      });
    const decision = decide(options, row, target, input.at, now);
    if (decision.kind === 'skip') {
      skip(decision.reason, decision.message);
      continue;
    }
    const moved: MigratedSubscription = {
      subscriptionId: row.id,
      teamId: row.team_id,
      fromVersion: row.plan_version,
      toVersion: target.version,
      currency: row.currency,
      at: decision.effectiveAt,
      ...(input.at === 'now' ? { proration: prorate(row, decision.price.amountMinor, now) } : {}),
    };
    if (runId === null) {
      result.migrated.push(moved);
      continue;
    }
    // The provider first (as every plan change does), with a key that repeats for this run and subscription.
    let providerState: ProviderSubscriptionState | null;
    try {
      providerState = await providerOf(options, row).changePlan(
        { id: row.id, teamId: row.team_id, providerSubscriptionId: row.provider_subscription_id },
        decision.price,
        { actionId: `${runId}:${row.id}`, when: input.at, now },
      );
    } catch (error) {
      options.logger.warn({ err: error, subscription: row.id, run: runId }, 'the provider refused a plan migration');
      skip('provider_error', `the billing provider refused the change: ${(error as Error).message}`);
      continue;
    }
    const done = await database.transaction(async (tx) => {
      const locked = await rowById(tx, row.id);
      if (!locked || locked.status === 'canceled' || locked.plan_id !== row.plan_id) return false;
      if (input.at === 'period_end') {
        await tx.query(
          `UPDATE subscriptions SET pending_plan_id = $2, pending_amount_minor = $3, pending_change_at = current_period_end,
             updated_at = now() WHERE id = $1`,
          [locked.id, target.id, String(decision.price.amountMinor)],
        );
        moved.at = locked.current_period_end;
      } else {
        const proration = prorate(locked, decision.price.amountMinor, now);
        moved.proration = proration;
        if (proration) {
          await insertProration(tx, locked, {
            toPlanId: target.id,
            creditMinor: BigInt(proration.creditMinor),
            chargeMinor: BigInt(proration.chargeMinor),
            changedAt: new Date(
              Math.min(
                Math.max(now.getTime(), locked.current_period_start.getTime()),
                locked.current_period_end.getTime(),
              ),
            ),
          });
        }
        await tx.query(
          `UPDATE subscriptions SET plan_id = $2, amount_minor = $3, pending_plan_id = NULL, pending_amount_minor = NULL,
             pending_change_at = NULL, provider_event_created = coalesce($4, provider_event_created), updated_at = now()
           WHERE id = $1`,
          [
            locked.id,
            target.id,
            String(decision.price.amountMinor),
            providerState ? Math.floor(now.getTime() / 1000) : null,
          ],
        );
      }
      await recordChange(tx, {
        subscriptionId: locked.id,
        action: input.at === 'now' ? 'subscription.migrated' : 'subscription.migration_scheduled',
        actor: input.actor,
        details: {
          run_id: runId,
          from_version: locked.plan_version,
          to_version: target.version,
          at: input.at,
          effective_at: moved.at.toISOString(),
          ...(input.at === 'now' ? { proration: moved.proration } : {}),
        },
        invalidations,
      });
      return true;
    });
    if (done) result.migrated.push(moved);
    else skip('changed_meanwhile', 'the subscription changed while the migration ran; run it again');
  }
  if (runId !== null && result.migrated.length > 0) {
    await database.transaction((tx) =>
      appendAuditEntry(tx, {
        ...input.actor,
        action: 'plan.migrated',
        outcome: 'success',
        targetType: 'plan',
        targetId: target.id,
        details: {
          slug: target.slug,
          run_id: runId,
          from_versions: fromVersions,
          to_version: target.version,
          at: input.at,
          migrated: result.migrated.length,
          skipped: result.skipped.length,
          skipped_by_reason: Object.fromEntries(
            [...new Set(result.skipped.map((entry) => entry.reason))].map((reason) => [
              reason,
              result.skipped.filter((entry) => entry.reason === reason).length,
            ]),
          ),
        },
      }),
    );
  }
  await invalidations.publish(options);
  return result;
}
