import { randomUUID } from 'node:crypto';
import { type AuditEntryInput, appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import { findPlan, type Plan, planPrice } from '../plans/plan-catalog.js';
import type { BillingInterval } from '../plans/plan-schemas.js';
import type { TeamPolicyEvents } from '../plans/team-policy-events.js';
import type { Database, Queryable } from '../storage/database.js';
import { enqueueTeamEvent } from '../webhooks/webhook-events.js';
import {
  type BillingProvider,
  cycleBoundaryAfter,
  type PricedPlan,
  type ProviderName,
  type ProviderSubscriptionState,
  periodEnd,
  type SubscriptionStatus,
} from './billing-provider.js';
import { prorateMinor } from './pricing.js';
import type { Currency } from './pricing-schema.js';

/**
 * A team's subscription to a plan version (docs/billing.md "Subscriptions"): the state machine
 * trialing → active → past_due → unpaid, canceled at any point; upgrades at once with proration,
 * downgrades at the period end, cancel now or at the period end, resume. Our rows are the truth the
 * gateway reads (team-policy.ts); the provider (manual or Stripe) collects the money and reports.
 *
 * Every change is audited and enqueues `subscription.updated` for the team's webhooks in its own
 * transaction; `teams.payment_required` follows whether a live subscription is `unpaid`; and once
 * the change committed the team's policy is invalidated on every gateway (TeamPolicyEvents).
 */

export interface SubscriptionServiceOptions {
  database: Database;
  provider: BillingProvider;
  /** TOLLGATE_BILLING_GRACE_DAYS: days a past_due subscription is still served. */
  graceDays: number;
  /** TOLLGATE_BILLING_PAYMENT_TERMS_DAYS: days a manual invoice has to be paid (14 when unset). */
  paymentTermsDays?: number | undefined;
  /** Where gateways hear that a team's policy changed; none: they see it within their cache TTL. */
  teamPolicyEvents?: Pick<TeamPolicyEvents, 'publishInvalidation'> | undefined;
  logger: Logger;
  /** Our clock; tests move it. */
  now?: () => Date;
  /** Where the provider's hosted checkout page sends the customer back. */
  returnUrl?: string | undefined;
}

/** Who acts, as the audit log records it (the route's `callerAudit`, or the system). */
export type SubscriptionActor = Pick<AuditEntryInput, 'actorUserId' | 'actorLabel' | 'ip' | 'userAgent' | 'requestId'>;

export const systemActor: SubscriptionActor = { actorLabel: 'system' };

export interface Subscription {
  id: string;
  teamId: string;
  plan: { id: string; slug: string; version: number; name: string };
  status: SubscriptionStatus;
  currency: Currency;
  interval: BillingInterval;
  /** minor units, e.g. cents: the base fee per interval. */
  amountMinor: number;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  trialEndsAt: Date | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  provider: ProviderName;
  providerSubscriptionId: string | null;
  /** A downgrade (or a switch to a shorter interval) waiting for the period end. */
  pendingChange: {
    plan: { id: string; slug: string; version: number };
    amountMinor: number;
    /** The billing interval from then on (the subscription's own unless the change switches it). */
    interval: BillingInterval;
    at: Date;
  } | null;
  pastDueAt: Date | null;
  /** Until when a past_due subscription is still served. */
  graceEndsAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface SubscriptionRow {
  id: string;
  team_id: string;
  plan_id: string;
  plan_slug: string;
  plan_version: number;
  plan_name: string;
  status: SubscriptionStatus;
  currency: Currency;
  billing_interval: BillingInterval;
  amount_minor: string;
  current_period_start: Date;
  current_period_end: Date;
  trial_ends_at: Date | null;
  cancel_at_period_end: boolean;
  canceled_at: Date | null;
  provider: ProviderName;
  provider_subscription_id: string | null;
  pending_plan_id: string | null;
  pending_plan_slug: string | null;
  pending_plan_version: number | null;
  pending_amount_minor: string | null;
  pending_change_at: Date | null;
  /** The interval a pending change switches to (migration 0027); null: the subscription's own. */
  pending_interval: BillingInterval | null;
  past_due_at: Date | null;
  grace_ends_at: Date | null;
  /** When the current billing cycle started (migration 0029): periods are whole months from it. */
  cycle_anchor_at: Date;
  provider_event_created: string | null;
  created_at: Date;
  updated_at: Date;
}

const selectSubscription = `SELECT s.*, p.slug AS plan_slug, p.version AS plan_version, p.name AS plan_name,
    pp.slug AS pending_plan_slug, pp.version AS pending_plan_version
  FROM subscriptions s JOIN plans p ON p.id = s.plan_id LEFT JOIN plans pp ON pp.id = s.pending_plan_id`;

function toSubscription(row: SubscriptionRow): Subscription {
  return {
    id: row.id,
    teamId: row.team_id,
    plan: { id: row.plan_id, slug: row.plan_slug, version: row.plan_version, name: row.plan_name },
    status: row.status,
    currency: row.currency,
    interval: row.billing_interval,
    amountMinor: Number(row.amount_minor),
    currentPeriodStart: row.current_period_start,
    currentPeriodEnd: row.current_period_end,
    trialEndsAt: row.trial_ends_at,
    cancelAtPeriodEnd: row.cancel_at_period_end,
    canceledAt: row.canceled_at,
    provider: row.provider,
    providerSubscriptionId: row.provider_subscription_id,
    pendingChange:
      row.pending_plan_id && row.pending_change_at
        ? {
            plan: {
              id: row.pending_plan_id,
              slug: row.pending_plan_slug ?? '',
              version: row.pending_plan_version ?? 0,
            },
            amountMinor: Number(row.pending_amount_minor ?? 0),
            interval: row.pending_interval ?? row.billing_interval,
            at: row.pending_change_at,
          }
        : null,
    pastDueAt: row.past_due_at,
    graceEndsAt: row.grace_ends_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The team's live (not canceled) subscription, optionally locked for an update. */
async function liveRow(db: Queryable, teamId: string, lock = false): Promise<SubscriptionRow | undefined> {
  const result = await db.query<SubscriptionRow>(
    `${selectSubscription} WHERE s.team_id = $1 AND s.status <> 'canceled'${lock ? ' FOR UPDATE OF s' : ''}`,
    [teamId],
  );
  return result.rows[0];
}

export async function rowById(db: Queryable, id: string): Promise<SubscriptionRow | undefined> {
  return (await db.query<SubscriptionRow>(`${selectSubscription} WHERE s.id = $1 FOR UPDATE OF s`, [id])).rows[0];
}

/** The team's live subscription, else its newest canceled one; undefined when it never subscribed. */
export async function getSubscription(db: Queryable, teamId: string): Promise<Subscription | undefined> {
  const result = await db.query<SubscriptionRow>(
    `${selectSubscription} WHERE s.team_id = $1 ORDER BY (s.status <> 'canceled') DESC, s.created_at DESC LIMIT 1`,
    [teamId],
  );
  return result.rows[0] ? toSubscription(result.rows[0]) : undefined;
}

/** The webhook payload and HTTP body of a subscription (snake_case, amounts in minor units). */
export function subscriptionBody(subscription: Subscription) {
  return {
    id: subscription.id,
    team_id: subscription.teamId,
    plan: subscription.plan.slug,
    plan_version: subscription.plan.version,
    status: subscription.status,
    currency: subscription.currency,
    interval: subscription.interval,
    amount_minor: subscription.amountMinor,
    current_period_start: subscription.currentPeriodStart.toISOString(),
    current_period_end: subscription.currentPeriodEnd.toISOString(),
    trial_ends_at: subscription.trialEndsAt?.toISOString() ?? null,
    cancel_at_period_end: subscription.cancelAtPeriodEnd,
    canceled_at: subscription.canceledAt?.toISOString() ?? null,
    provider: subscription.provider,
    pending_change: subscription.pendingChange
      ? {
          plan: subscription.pendingChange.plan.slug,
          plan_version: subscription.pendingChange.plan.version,
          amount_minor: subscription.pendingChange.amountMinor,
          interval: subscription.pendingChange.interval,
          at: subscription.pendingChange.at.toISOString(),
        }
      : null,
    past_due_at: subscription.pastDueAt?.toISOString() ?? null,
    grace_ends_at: subscription.graceEndsAt?.toISOString() ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Validation

interface TeamRef {
  id: string;
  name: string;
}

/** The newest version of a plan a team may subscribe to now, priced in `currency` per `interval`. */
async function subscribablePlan(
  db: Queryable,
  slug: string,
  currency: Currency,
  interval: BillingInterval,
): Promise<{ plan: Plan; price: PricedPlan }> {
  const plan = await findPlan(db, slug);
  if (!plan) {
    throw new TollgateError('not_found', `no plan ${slug}`, { hint: 'tollgate plans list shows the plans on sale' });
  }
  if (plan.archivedAt) {
    throw new TollgateError('plan_archived', `the plan ${plan.slug} is archived and takes no new subscriptions`, {
      hint: 'tollgate plans list shows the plans on sale',
    });
  }
  const price = planPrice(plan, currency, interval);
  if (!price) {
    const offered = plan.prices.map((p) => `${p.currency}/${p.interval}`).join(', ') || 'none';
    throw new TollgateError(
      'price_not_offered',
      `the plan ${plan.slug} has no ${interval === 'year' ? 'annual' : 'monthly'} price in ${currency}`,
      { hint: `prices of ${plan.slug}: ${offered}` },
    );
  }
  return {
    plan,
    price: {
      planId: plan.id,
      planSlug: plan.slug,
      planName: plan.name,
      currency,
      interval,
      amountMinor: price.amountMinor,
      trialDays: plan.trialDays,
    },
  };
}

async function checkCurrency(db: Queryable, teamId: string, currency: Currency): Promise<void> {
  const team = await db.query<{ billing_currency: string | null }>('SELECT billing_currency FROM teams WHERE id = $1', [
    teamId,
  ]);
  const fixed = team.rows[0]?.billing_currency;
  if (fixed && fixed !== currency) {
    throw new TollgateError(
      'currency_fixed',
      `this team pays in ${fixed}, fixed by its first subscription; it cannot subscribe in ${currency}`,
      { hint: `subscribe with --currency ${fixed}` },
    );
  }
}

function subscriptionExists(existing: SubscriptionRow): TollgateError {
  return new TollgateError(
    'subscription_exists',
    `the team already has a ${existing.status} subscription to ${existing.plan_slug}`,
    {
      hint: 'change its plan with tollgate subscription change <plan>, or cancel it first',
    },
  );
}

function noSubscription(): TollgateError {
  return new TollgateError('no_subscription', 'the team has no live subscription', {
    hint: 'subscribe with tollgate subscribe <plan>',
  });
}

async function hadTrial(db: Queryable, teamId: string): Promise<boolean> {
  const result = await db.query(
    'SELECT 1 FROM subscriptions WHERE team_id = $1 AND trial_ends_at IS NOT NULL LIMIT 1',
    [teamId],
  );
  return result.rowCount > 0;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Teams whose gateway policy changed in a transaction, invalidated once it committed. */
class Invalidations {
  readonly teams = new Set<string>();
  add(teamId: string) {
    this.teams.add(teamId);
  }
  async publish(options: Pick<SubscriptionServiceOptions, 'teamPolicyEvents' | 'logger'>): Promise<void> {
    for (const teamId of this.teams) {
      await options.teamPolicyEvents?.publishInvalidation(teamId).catch((error: unknown) => {
        options.logger.warn(
          { err: error, team: teamId },
          "could not announce the team's new policy; gateways see it within their cache TTL",
        );
      });
    }
  }
}

/** `teams.payment_required` follows whether the team has an unpaid live subscription. */
async function syncPaymentRequired(tx: Queryable, teamId: string): Promise<void> {
  await tx.query(
    `UPDATE teams SET payment_required = EXISTS (
       SELECT 1 FROM subscriptions WHERE team_id = $1 AND status = 'unpaid'), updated_at = now()
     WHERE id = $1`,
    [teamId],
  );
}

/** Audits a change and tells the team's webhooks, in the change's transaction. */
export async function recordChange(
  tx: Queryable,
  input: {
    subscriptionId: string;
    action: string;
    actor: SubscriptionActor;
    details?: Record<string, unknown>;
    invalidations: Invalidations;
  },
): Promise<Subscription> {
  const row = (await tx.query<SubscriptionRow>(`${selectSubscription} WHERE s.id = $1`, [input.subscriptionId]))
    .rows[0] as SubscriptionRow;
  const subscription = toSubscription(row);
  await syncPaymentRequired(tx, row.team_id);
  await appendAuditEntry(tx, {
    ...input.actor,
    action: input.action,
    outcome: 'success',
    targetType: 'subscription',
    targetId: row.id,
    teamId: row.team_id,
    details: { plan: row.plan_slug, plan_version: row.plan_version, status: row.status, ...input.details },
  });
  await enqueueTeamEvent(tx, {
    teamId: row.team_id,
    type: 'subscription.updated',
    data: { change: input.action.replace(/^subscription\./, ''), subscription: subscriptionBody(subscription) },
  });
  input.invalidations.add(row.team_id);
  return subscription;
}

interface NewSubscription {
  teamId: string;
  price: PricedPlan;
  provider: ProviderName;
  state: ProviderSubscriptionState;
  /** Unix seconds of the provider event this comes from, if any. */
  syncedAt?: number;
}

/**
 * Inserts a live subscription, replacing the team's live one if any (a free plan left for a paid
 * one), fixes the team's currency and, at its first subscription, its billing anchor.
 */
async function insertSubscription(
  tx: Queryable,
  input: NewSubscription & { actor: SubscriptionActor; invalidations: Invalidations; replace: boolean },
): Promise<Subscription> {
  await tx.query('SELECT id FROM teams WHERE id = $1 FOR UPDATE', [input.teamId]);
  await checkCurrency(tx, input.teamId, input.price.currency);
  const existing = await liveRow(tx, input.teamId, true);
  if (existing) {
    if (!input.replace) throw subscriptionExists(existing);
    await tx.query(
      `UPDATE subscriptions SET status = 'canceled', canceled_at = $2, cancel_at_period_end = false,
         pending_plan_id = NULL, pending_amount_minor = NULL, pending_change_at = NULL, updated_at = now() WHERE id = $1`,
      [existing.id, input.state.currentPeriodStart],
    );
    await recordChange(tx, {
      subscriptionId: existing.id,
      action: 'subscription.replaced',
      actor: input.actor,
      details: { by_plan: input.price.planSlug },
      invalidations: input.invalidations,
    });
  }
  const first =
    (await tx.query('SELECT 1 FROM subscriptions WHERE team_id = $1 LIMIT 1', [input.teamId])).rowCount === 0;
  const state = input.state;
  let inserted: { id: string };
  try {
    inserted = (
      await tx.query<{ id: string }>(
        `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start,
           current_period_end, trial_ends_at, cancel_at_period_end, canceled_at, provider, provider_subscription_id,
           amount_minor, past_due_at, grace_ends_at, provider_event_created)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, $14) RETURNING id`,
        [
          input.teamId,
          input.price.planId,
          state.status === 'canceled' ? 'active' : state.status,
          input.price.currency,
          input.price.interval,
          state.currentPeriodStart,
          state.currentPeriodEnd,
          state.trialEndsAt,
          state.cancelAtPeriodEnd,
          null,
          input.provider,
          state.providerSubscriptionId,
          String(state.amountMinor ?? input.price.amountMinor),
          input.syncedAt ?? null,
        ],
      )
    ).rows[0] as { id: string };
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      const live = await liveRow(tx, input.teamId);
      if (live) throw subscriptionExists(live);
    }
    throw error;
  }
  await tx.query(
    `UPDATE teams SET billing_currency = coalesce(billing_currency, $2),
       billing_anchor_at = CASE WHEN $3 THEN $4 ELSE billing_anchor_at END, updated_at = now()
     WHERE id = $1`,
    [input.teamId, input.price.currency, first, state.currentPeriodStart],
  );
  return recordChange(tx, {
    subscriptionId: inserted.id,
    action: 'subscription.created',
    actor: input.actor,
    details: {
      currency: input.price.currency,
      interval: input.price.interval,
      amount_minor: input.price.amountMinor,
      provider: input.provider,
      ...(state.trialEndsAt ? { trial_ends_at: state.trialEndsAt.toISOString() } : {}),
    },
    invalidations: input.invalidations,
  });
}

export type SubscribeResult =
  | { kind: 'subscribed'; subscription: Subscription }
  | { kind: 'checkout'; checkoutUrl: string; checkoutId: string };

export interface SubscribeInput {
  team: TeamRef;
  plan: string;
  interval: BillingInterval;
  currency: Currency;
  actor: SubscriptionActor;
}

/**
 * Subscribes a team. A free plan (a price of 0) starts at once without any provider; a plan with
 * trial days starts its trial at once, without a card (once per team); otherwise the provider
 * decides: the manual provider starts it at once, Stripe answers a Checkout URL and the subscription
 * starts when Stripe reports the checkout completed. Refused (nothing written): an unknown or
 * archived plan, a currency or interval the plan has no price in, another currency than the team's,
 * a team with a live subscription.
 */
export async function subscribe(options: SubscriptionServiceOptions, input: SubscribeInput): Promise<SubscribeResult> {
  return startSubscription(options, { ...input, replace: false });
}

async function startSubscription(
  options: SubscriptionServiceOptions,
  input: SubscribeInput & { replace: boolean },
): Promise<SubscribeResult> {
  const { database } = options;
  const now = (options.now ?? (() => new Date()))();
  const { price } = await subscribablePlan(database, input.plan, input.currency, input.interval);
  await checkCurrency(database, input.team.id, input.currency);
  const existing = await liveRow(database, input.team.id);
  if (existing && !input.replace) throw subscriptionExists(existing);
  const free = price.amountMinor === 0;
  const trialDays = free || (await hadTrial(database, input.team.id)) ? 0 : price.trialDays;
  const attemptId = randomUUID();
  const priced = { ...price, trialDays };
  const provider: BillingProvider = free ? freeProvider : options.provider;
  // A Checkout still open for the same plan version, currency and interval is the one to pay: a
  // second session would let the team pay twice.
  const open = free || trialDays > 0 ? undefined : await findOpenCheckout(database, input.team.id, now);
  if (
    open &&
    open.planId === price.planId &&
    open.currency === price.currency &&
    open.interval === price.interval &&
    open.provider === provider.name
  ) {
    return { kind: 'checkout', checkoutUrl: open.url, checkoutId: open.id };
  }
  const started = await provider.startSubscription(database, {
    teamId: input.team.id,
    teamName: input.team.name,
    attemptId,
    price: priced,
    returnUrl: options.returnUrl ?? 'https://localhost/',
    now,
  });
  const invalidations = new Invalidations();
  if (started.kind === 'checkout') {
    await database.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO subscription_checkouts (id, team_id, plan_id, currency, billing_interval, amount_minor, provider,
           provider_session_id, url, created_by_user_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          attemptId,
          input.team.id,
          price.planId,
          price.currency,
          price.interval,
          String(price.amountMinor),
          provider.name,
          started.sessionId,
          started.url,
          input.actor.actorUserId ?? null,
          started.expiresAt ?? null,
        ],
      );
      await appendAuditEntry(tx, {
        ...input.actor,
        action: 'subscription.checkout_started',
        outcome: 'success',
        targetType: 'subscription_checkout',
        targetId: attemptId,
        teamId: input.team.id,
        details: { plan: price.planSlug, currency: price.currency, interval: price.interval },
      });
    });
    // The team's Checkout for another plan, currency or interval can no longer be paid: only the newest counts.
    if (open && provider.expireCheckout) {
      await expireOtherCheckouts(options, provider, { teamId: input.team.id, keep: attemptId, actor: input.actor });
    }
    return { kind: 'checkout', checkoutUrl: started.url, checkoutId: attemptId };
  }
  const subscription = await database.transaction((tx) =>
    insertSubscription(tx, {
      teamId: input.team.id,
      price: priced,
      provider: provider.name,
      state: started.state,
      actor: input.actor,
      invalidations,
      replace: input.replace,
    }),
  );
  await invalidations.publish(options);
  return { kind: 'subscribed', subscription };
}

/** A Checkout the team started that can still be paid. */
export interface OpenCheckout {
  id: string;
  url: string;
  planId: string;
  planSlug: string;
  currency: Currency;
  interval: BillingInterval;
  /** minor units, e.g. cents */
  amountMinor: number;
  provider: ProviderName;
  /** When the provider's page stops taking the payment; null when the provider did not say. */
  expiresAt: Date | null;
  createdAt: Date;
}

/** The team's newest open Checkout that has not expired by `now`, if any. */
export async function findOpenCheckout(db: Queryable, teamId: string, now: Date): Promise<OpenCheckout | undefined> {
  const row = (
    await db.query<{
      id: string;
      url: string;
      plan_id: string;
      plan_slug: string;
      currency: Currency;
      billing_interval: BillingInterval;
      amount_minor: string;
      provider: ProviderName;
      expires_at: Date | null;
      created_at: Date;
    }>(
      `SELECT c.id, c.url, c.plan_id, p.slug AS plan_slug, c.currency, c.billing_interval, c.amount_minor::text,
         c.provider, c.expires_at, c.created_at
       FROM subscription_checkouts c JOIN plans p ON p.id = c.plan_id
       WHERE c.team_id = $1 AND c.status = 'open' AND (c.expires_at IS NULL OR c.expires_at > $2)
       ORDER BY c.created_at DESC LIMIT 1`,
      [teamId, now],
    )
  ).rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    url: row.url,
    planId: row.plan_id,
    planSlug: row.plan_slug,
    currency: row.currency.trim() as Currency,
    interval: row.billing_interval,
    amountMinor: Number(row.amount_minor),
    provider: row.provider,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  };
}

/** Expires the team's open Checkouts other than `keep` at the provider and here; a failure is logged, not thrown. */
async function expireOtherCheckouts(
  options: SubscriptionServiceOptions,
  provider: BillingProvider,
  input: { teamId: string; keep: string; actor: SubscriptionActor },
): Promise<void> {
  const others = await options.database.query<{ id: string; provider_session_id: string }>(
    `SELECT id, provider_session_id FROM subscription_checkouts WHERE team_id = $1 AND status = 'open' AND id <> $2`,
    [input.teamId, input.keep],
  );
  for (const other of others.rows) {
    try {
      await provider.expireCheckout?.(other.provider_session_id, { actionId: other.id });
      await options.database.transaction((tx) =>
        expireSubscriptionCheckout(tx, {
          providerName: provider.name,
          sessionId: other.provider_session_id,
          at: (options.now ?? (() => new Date()))(),
          actor: input.actor,
          reason: 'replaced',
        }),
      );
    } catch (error) {
      options.logger.warn(
        { err: error, checkout: other.id },
        'could not expire a replaced Checkout; it ends when the provider expires it',
      );
    }
  }
}

/**
 * Marks an open subscription Checkout expired (Stripe: checkout.session.expired, or replaced by a
 * newer one), audited. A Checkout already completed (an out-of-order event) or expired, or not
 * ours, changes nothing: returns false.
 */
export async function expireSubscriptionCheckout(
  tx: Queryable,
  input: {
    providerName: ProviderName;
    sessionId: string;
    at: Date;
    actor?: SubscriptionActor;
    reason?: 'expired' | 'replaced';
  },
): Promise<boolean> {
  const checkout = (
    await tx.query<{ id: string; team_id: string; status: string; plan_id: string }>(
      `SELECT id, team_id, status, plan_id FROM subscription_checkouts
       WHERE provider = $1 AND provider_session_id = $2 FOR UPDATE`,
      [input.providerName, input.sessionId],
    )
  ).rows[0];
  if (checkout?.status !== 'open') return false;
  await tx.query(`UPDATE subscription_checkouts SET status = 'expired', expired_at = $2 WHERE id = $1`, [
    checkout.id,
    input.at,
  ]);
  await appendAuditEntry(tx, {
    ...(input.actor ?? systemActor),
    action: 'subscription.checkout_expired',
    outcome: 'success',
    targetType: 'subscription_checkout',
    targetId: checkout.id,
    teamId: checkout.team_id,
    details: { provider_session_id: input.sessionId, reason: input.reason ?? 'expired' },
  });
  return true;
}

/** Free plans never reach a payment provider: nothing to collect. */
const freeProvider: BillingProvider = {
  name: 'manual',
  ensureCustomer: async () => null,
  async startSubscription(_db, input) {
    return {
      kind: 'started',
      state: {
        providerSubscriptionId: null,
        providerCustomerId: null,
        status: 'active',
        currentPeriodStart: input.now,
        currentPeriodEnd: periodEnd(input.now, input.price.interval),
        trialEndsAt: null,
        cancelAtPeriodEnd: false,
        canceledAt: null,
        planId: input.price.planId,
        amountMinor: 0,
      },
    };
  },
  changePlan: async () => null,
  cancel: async () => null,
  resume: async () => null,
  fetchSubscription: async () => undefined,
};

/** The provider of an existing row: its own, or none for a row without a provider subscription. */
export function providerOf(options: SubscriptionServiceOptions, row: SubscriptionRow): BillingProvider {
  return row.provider_subscription_id && row.provider === options.provider.name ? options.provider : freeProvider;
}

const ref = (row: SubscriptionRow) => ({
  id: row.id,
  teamId: row.team_id,
  providerSubscriptionId: row.provider_subscription_id,
});

export type ChangeResult =
  | {
      kind: 'upgraded';
      subscription: Subscription;
      /** minor units: credit for the unused old fee, charge for the rest of the period at the new one. */
      proration: { creditMinor: number; chargeMinor: number; netMinor: number } | null;
    }
  | { kind: 'downgrade_scheduled'; subscription: Subscription }
  | {
      /** To a longer interval (or during a trial): a new period starts now in the new interval. */
      kind: 'interval_switched';
      subscription: Subscription;
      /** minor units: the unused part of the old fee credited; null during a trial. */
      proration: { creditMinor: number; chargeMinor: number; netMinor: number } | null;
    }
  | { kind: 'interval_switch_scheduled'; subscription: Subscription }
  | { kind: 'checkout'; checkoutUrl: string; checkoutId: string };

/**
 * Moves the team's subscription to the newest version of another plan (`plan`, default its own) in
 * its currency, and optionally to another billing interval (`interval`, default its own). In the same
 * interval, a plan that costs more (or the same) applies at once: the rest of the period is prorated
 * (the unused part of the old fee credited, the new fee charged for what remains; during a trial
 * nothing is prorated). A plan that costs less waits for the period end. Another interval: see
 * `switchInterval`. From a free plan to a paid one through Stripe, a Checkout starts and the new
 * subscription replaces the free one.
 */
export async function changeSubscriptionPlan(
  options: SubscriptionServiceOptions,
  input: { team: TeamRef; plan?: string | undefined; interval?: BillingInterval | undefined; actor: SubscriptionActor },
): Promise<ChangeResult> {
  const { database } = options;
  const now = (options.now ?? (() => new Date()))();
  const current = await liveRow(database, input.team.id);
  if (!current) throw noSubscription();
  if (current.status === 'unpaid') {
    throw new TollgateError(
      'payment_required',
      `the subscription is unpaid: pay its open invoice before changing ${input.plan ? 'plan' : 'interval'}`,
    );
  }
  const interval = input.interval ?? current.billing_interval;
  const planSlug = input.plan ?? current.plan_slug;
  const { price } = await subscribablePlan(database, planSlug, current.currency, interval);
  if (price.planId === current.plan_id && interval === current.billing_interval) {
    throw new TollgateError(
      'subscription_unchanged',
      `the team is already on ${price.planSlug} version ${current.plan_version}, billed ${interval === 'year' ? 'annually' : 'monthly'}`,
    );
  }
  const oldAmount = Number(current.amount_minor);
  const paidFromFree = oldAmount === 0 && price.amountMinor > 0 && !current.provider_subscription_id;
  if (paidFromFree && options.provider.name !== 'manual') {
    const started = await startSubscription(options, {
      team: input.team,
      plan: planSlug,
      interval,
      currency: current.currency,
      actor: input.actor,
      replace: true,
    });
    if (started.kind === 'checkout') return started;
    return { kind: 'upgraded', subscription: started.subscription, proration: null };
  }
  if (interval !== current.billing_interval) {
    return switchInterval(options, { current, price, actor: input.actor, now });
  }
  const provider = providerOf(options, current);
  const actionId = randomUUID();
  const invalidations = new Invalidations();
  if (price.amountMinor < oldAmount) {
    // A downgrade: the period was paid at the old fee; the new plan starts with the next one.
    await provider.changePlan(ref(current), price, { actionId, when: 'period_end', now });
    const subscription = await database.transaction(async (tx) => {
      const row = (await rowById(tx, current.id)) as SubscriptionRow;
      await tx.query(
        `UPDATE subscriptions SET pending_plan_id = $2, pending_amount_minor = $3, pending_change_at = current_period_end,
           updated_at = now() WHERE id = $1`,
        [row.id, price.planId, String(price.amountMinor)],
      );
      return recordChange(tx, {
        subscriptionId: row.id,
        action: 'subscription.downgrade_scheduled',
        actor: input.actor,
        details: { to_plan: price.planSlug, at: row.current_period_end.toISOString() },
        invalidations,
      });
    });
    return { kind: 'downgrade_scheduled', subscription };
  }
  const providerState = await provider.changePlan(ref(current), price, { actionId, when: 'now', now });
  let proration: { creditMinor: number; chargeMinor: number; netMinor: number } | null = null;
  const subscription = await database.transaction(async (tx) => {
    const row = (await rowById(tx, current.id)) as SubscriptionRow;
    const start = row.current_period_start.getTime();
    const end = row.current_period_end.getTime();
    const at = Math.min(Math.max(now.getTime(), start), end);
    if (row.status !== 'trialing' && end > start) {
      const credit = prorateMinor(BigInt(row.amount_minor), end - at, end - start);
      const charge = prorateMinor(BigInt(price.amountMinor), end - at, end - start);
      proration = { creditMinor: Number(credit), chargeMinor: Number(charge), netMinor: Number(charge - credit) };
      await insertProration(tx, row, {
        toPlanId: price.planId,
        creditMinor: credit,
        chargeMinor: charge,
        changedAt: new Date(at),
      });
    }
    await tx.query(
      `UPDATE subscriptions SET plan_id = $2, amount_minor = $3, pending_plan_id = NULL, pending_amount_minor = NULL,
         pending_change_at = NULL, provider_event_created = coalesce($4, provider_event_created), updated_at = now()
       WHERE id = $1`,
      [row.id, price.planId, String(price.amountMinor), providerState ? Math.floor(now.getTime() / 1000) : null],
    );
    return recordChange(tx, {
      subscriptionId: row.id,
      action: 'subscription.upgraded',
      actor: input.actor,
      details: { from_plan: row.plan_slug, proration },
      invalidations,
    });
  });
  await invalidations.publish(options);
  return { kind: 'upgraded', subscription, proration };
}

/**
 * Moves a subscription to another billing interval (and maybe another plan), as Stripe Billing does
 * (docs/billing.md "Monthly and annual"):
 * - to a longer interval (monthly → annual): at once. The current period ends now and a new one
 *   starts now in the new interval (the billing anchor moves); the unused part of the old fee is
 *   credited against the new one (a proration row); the usage of the cut period is still rated and
 *   invoiced when that period closes (the billing_periods trigger records it, ending now).
 * - to a shorter interval (annual → monthly): at the end of the paid period, as a pending change
 *   that carries the interval, whatever the new price.
 * - during a trial: at once in either direction, without proration; the trial keeps its end and the
 *   first paid period is billed in the new interval.
 */
async function switchInterval(
  options: SubscriptionServiceOptions,
  input: { current: SubscriptionRow; price: PricedPlan; actor: SubscriptionActor; now: Date },
): Promise<ChangeResult> {
  const { database } = options;
  const { current, price, now } = input;
  const provider = providerOf(options, current);
  const actionId = randomUUID();
  const invalidations = new Invalidations();
  const trialing = current.status === 'trialing';
  if (!trialing && price.interval === 'month') {
    await provider.changePlan(ref(current), price, { actionId, when: 'period_end', now });
    const subscription = await database.transaction(async (tx) => {
      const row = (await rowById(tx, current.id)) as SubscriptionRow;
      await tx.query(
        `UPDATE subscriptions SET pending_plan_id = $2, pending_amount_minor = $3, pending_change_at = current_period_end,
           pending_interval = $4, updated_at = now() WHERE id = $1`,
        [row.id, price.planId, String(price.amountMinor), price.interval],
      );
      return recordChange(tx, {
        subscriptionId: row.id,
        action: 'subscription.interval_switch_scheduled',
        actor: input.actor,
        details: {
          to_plan: price.planSlug,
          from_interval: row.billing_interval,
          to_interval: price.interval,
          at: row.current_period_end.toISOString(),
        },
        invalidations,
      });
    });
    await invalidations.publish(options);
    return { kind: 'interval_switch_scheduled', subscription };
  }
  const providerState = await provider.changePlan(ref(current), price, { actionId, when: 'now', now });
  let proration: { creditMinor: number; chargeMinor: number; netMinor: number } | null = null;
  const subscription = await database.transaction(async (tx) => {
    const row = (await rowById(tx, current.id)) as SubscriptionRow;
    const start = row.current_period_start.getTime();
    const end = row.current_period_end.getTime();
    if (trialing) {
      // The trial is its own first period and keeps its end; the paid periods after it take the new interval.
      await tx.query(
        `UPDATE subscriptions SET plan_id = $2, amount_minor = $3, billing_interval = $4, pending_plan_id = NULL,
           pending_amount_minor = NULL, pending_change_at = NULL, updated_at = now() WHERE id = $1`,
        [row.id, price.planId, String(price.amountMinor), price.interval],
      );
    } else {
      // Stripe starts the new period on its own clock: our row follows what it answered.
      const newStart = providerState?.currentPeriodStart ?? new Date(Math.min(Math.max(now.getTime(), start), end));
      const newEnd = providerState?.currentPeriodEnd ?? periodEnd(newStart, price.interval);
      const at = Math.min(Math.max(newStart.getTime(), start), end);
      const byStripe = row.provider === 'stripe' && row.provider_subscription_id !== null;
      const credit = end > start ? prorateMinor(BigInt(row.amount_minor), end - at, end - start) : 0n;
      // Stripe invoices the new period's fee now, less the credit; with the manual provider the new
      // period's fee is its base fee at its close, and the credit goes on that invoice.
      const charge = byStripe ? BigInt(price.amountMinor) : 0n;
      proration = { creditMinor: Number(credit), chargeMinor: Number(charge), netMinor: Number(charge - credit) };
      await insertProration(tx, row, {
        toPlanId: price.planId,
        creditMinor: credit,
        chargeMinor: charge,
        changedAt: new Date(at),
      });
      // Moving the period start makes the billing_periods trigger record the cut period (its usage is
      // rated at its close) and the cycle anchor follow the new period.
      await tx.query(
        `UPDATE subscriptions SET plan_id = $2, amount_minor = $3, billing_interval = $4, current_period_start = $5,
           current_period_end = $6, pending_plan_id = NULL, pending_amount_minor = NULL, pending_change_at = NULL,
           provider_event_created = coalesce($7, provider_event_created), updated_at = now()
         WHERE id = $1`,
        [
          row.id,
          price.planId,
          String(price.amountMinor),
          price.interval,
          newStart,
          newEnd,
          providerState ? Math.floor(now.getTime() / 1000) : null,
        ],
      );
      // The billing anchor moves with the new cycle: quota months are counted from it.
      await tx.query('UPDATE teams SET billing_anchor_at = $2, updated_at = now() WHERE id = $1', [
        row.team_id,
        newStart,
      ]);
    }
    return recordChange(tx, {
      subscriptionId: row.id,
      action: 'subscription.interval_switched',
      actor: input.actor,
      details: {
        from_plan: row.plan_slug,
        from_interval: row.billing_interval,
        to_interval: price.interval,
        proration,
      },
      invalidations,
    });
  });
  await invalidations.publish(options);
  return { kind: 'interval_switched', subscription, proration };
}

/**
 * Records the proration of a change inside the current period (subscription_prorations): the credit
 * for the unused old fee and the charge at the new one, until the period close invoices a
 * Tollgate-collected one (`collected_by`: stripe when Stripe bills it on its own invoice).
 */
export async function insertProration(
  tx: Queryable,
  row: SubscriptionRow,
  input: { toPlanId: string; creditMinor: bigint; chargeMinor: bigint; changedAt: Date },
): Promise<void> {
  await tx.query(
    `INSERT INTO subscription_prorations (subscription_id, team_id, from_plan_id, to_plan_id, currency, credit_minor,
       charge_minor, net_minor, period_start, period_end, changed_at, collected_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      row.id,
      row.team_id,
      row.plan_id,
      input.toPlanId,
      row.currency,
      String(input.creditMinor),
      String(input.chargeMinor),
      String(input.chargeMinor - input.creditMinor),
      row.current_period_start,
      row.current_period_end,
      input.changedAt,
      row.provider === 'stripe' && row.provider_subscription_id ? 'stripe' : 'tollgate',
    ],
  );
}

/** Cancels now (the team falls back to the default plan at once) or at the period end. */
export async function cancelSubscription(
  options: SubscriptionServiceOptions,
  input: { teamId: string; atPeriodEnd: boolean; actor: SubscriptionActor },
): Promise<Subscription> {
  const { database } = options;
  const now = (options.now ?? (() => new Date()))();
  const current = await liveRow(database, input.teamId);
  if (!current) throw noSubscription();
  await providerOf(options, current).cancel(ref(current), {
    atPeriodEnd: input.atPeriodEnd,
    actionId: randomUUID(),
    now,
  });
  const invalidations = new Invalidations();
  const subscription = await database.transaction(async (tx) => {
    const row = (await rowById(tx, current.id)) as SubscriptionRow;
    if (input.atPeriodEnd) {
      // A switch to another interval waiting for the period end would start a period that the cancel
      // ends: it is dropped (a downgrade waiting there is kept; the cancel wins over it anyway).
      await tx.query(
        `UPDATE subscriptions SET cancel_at_period_end = true,
           pending_plan_id = CASE WHEN pending_interval IS NULL THEN pending_plan_id END,
           pending_amount_minor = CASE WHEN pending_interval IS NULL THEN pending_amount_minor END,
           pending_change_at = CASE WHEN pending_interval IS NULL THEN pending_change_at END,
           updated_at = now() WHERE id = $1`,
        [row.id],
      );
    } else {
      await tx.query(
        `UPDATE subscriptions SET status = 'canceled', canceled_at = $2, cancel_at_period_end = false,
           pending_plan_id = NULL, pending_amount_minor = NULL, pending_change_at = NULL, updated_at = now()
         WHERE id = $1`,
        [row.id, now],
      );
    }
    return recordChange(tx, {
      subscriptionId: row.id,
      action: input.atPeriodEnd ? 'subscription.cancel_scheduled' : 'subscription.canceled',
      actor: input.actor,
      ...(input.atPeriodEnd ? { details: { at: row.current_period_end.toISOString() } } : {}),
      invalidations,
    });
  });
  await invalidations.publish(options);
  return subscription;
}

/** Undoes a cancel at the period end. */
export async function resumeSubscription(
  options: SubscriptionServiceOptions,
  input: { teamId: string; actor: SubscriptionActor },
): Promise<Subscription> {
  const { database } = options;
  const now = (options.now ?? (() => new Date()))();
  const current = await liveRow(database, input.teamId);
  if (!current) throw noSubscription();
  if (!current.cancel_at_period_end) {
    throw new TollgateError('subscription_not_canceling', 'the subscription is not set to cancel at the period end', {
      hint: 'tollgate subscription show',
    });
  }
  await providerOf(options, current).resume(ref(current), { actionId: randomUUID(), now });
  const invalidations = new Invalidations();
  const subscription = await database.transaction(async (tx) => {
    await tx.query('UPDATE subscriptions SET cancel_at_period_end = false, updated_at = now() WHERE id = $1', [
      current.id,
    ]);
    return recordChange(tx, {
      subscriptionId: current.id,
      action: 'subscription.resumed',
      actor: input.actor,
      invalidations,
    });
  });
  await invalidations.publish(options);
  return subscription;
}

// ---------------------------------------------------------------------------------------------
// Payment state (the manual provider's invoices, and what Stripe reports)

const dayMs = 86_400_000;

/**
 * A payment failed: the subscription becomes past_due, served for the grace period from the first
 * failure (a second failure does not extend it). The invoice work calls this for manual invoices.
 */
export async function markSubscriptionPastDue(
  options: SubscriptionServiceOptions,
  input: { teamId: string; at?: Date; actor?: SubscriptionActor },
): Promise<Subscription> {
  const at = input.at ?? (options.now ?? (() => new Date()))();
  const invalidations = new Invalidations();
  const subscription = await options.database.transaction(async (tx) => {
    const row = await liveRow(tx, input.teamId, true);
    if (!row) throw noSubscription();
    const changed = await setPastDue(tx, row, at, options.graceDays);
    if (!changed) return toSubscription(row);
    return recordChange(tx, {
      subscriptionId: row.id,
      action: 'subscription.past_due',
      actor: input.actor ?? systemActor,
      invalidations,
    });
  });
  await invalidations.publish(options);
  return subscription;
}

/** A payment succeeded: a past_due or unpaid subscription is active again (trialing inside its trial). */
export async function recordSubscriptionPayment(
  options: SubscriptionServiceOptions,
  input: { teamId: string; at?: Date; actor?: SubscriptionActor },
): Promise<Subscription> {
  const at = input.at ?? (options.now ?? (() => new Date()))();
  const invalidations = new Invalidations();
  const subscription = await options.database.transaction(async (tx) => {
    const row = await liveRow(tx, input.teamId, true);
    if (!row) throw noSubscription();
    if (row.status !== 'past_due' && row.status !== 'unpaid') return toSubscription(row);
    // Another invoice still unpaid past its due date (or whose payment failed) keeps it past due.
    if (await firstOverdueInvoice(tx, row.team_id, at)) return toSubscription(row);
    const status = row.trial_ends_at && row.trial_ends_at > at ? 'trialing' : 'active';
    await tx.query(
      `UPDATE subscriptions SET status = $2, past_due_at = NULL, grace_ends_at = NULL, updated_at = now() WHERE id = $1`,
      [row.id, status],
    );
    return recordChange(tx, {
      subscriptionId: row.id,
      action: 'subscription.paid',
      actor: input.actor ?? systemActor,
      invalidations,
    });
  });
  await invalidations.publish(options);
  return subscription;
}

/** The team's open invoice due longest ago, if one is due by `at`. */
async function firstOverdueInvoice(
  tx: Queryable,
  teamId: string,
  at: Date,
): Promise<{ number: string; due_at: Date } | undefined> {
  const result = await tx.query<{ number: string; due_at: Date }>(
    `SELECT number, due_at FROM invoices
     WHERE team_id = $1 AND status = 'open' AND kind = 'invoice' AND due_at <= $2 ORDER BY due_at LIMIT 1`,
    [teamId, at],
  );
  return result.rows[0];
}

async function setPastDue(tx: Queryable, row: SubscriptionRow, at: Date, graceDays: number): Promise<boolean> {
  if (row.status === 'past_due' || row.status === 'unpaid' || row.status === 'canceled') return false;
  await tx.query(
    `UPDATE subscriptions SET status = 'past_due', past_due_at = $2, grace_ends_at = $3, updated_at = now() WHERE id = $1`,
    [row.id, at, new Date(at.getTime() + graceDays * dayMs)],
  );
  return true;
}

/**
 * Applies what a provider says about one of our subscriptions (a re-fetched Stripe subscription, so
 * the newest state whatever order its events came in). Our decisions stay ours: a subscription we
 * moved to unpaid after its grace stays unpaid while the provider still says past_due, and the grace
 * runs from the first failure we heard of (`at`: the provider event's time). Returns false when
 * nothing changed.
 */
export async function applyProviderSubscriptionState(
  tx: Queryable,
  input: {
    providerName: ProviderName;
    state: ProviderSubscriptionState;
    /** When the provider reported it (Stripe: the event's `created`). */
    at: Date;
    graceDays: number;
    invalidations: { add(teamId: string): void };
  },
): Promise<Subscription | undefined> {
  const { state } = input;
  if (!state.providerSubscriptionId) return undefined;
  const row = (
    await tx.query<SubscriptionRow>(
      `${selectSubscription} WHERE s.provider = $1 AND s.provider_subscription_id = $2 FOR UPDATE OF s`,
      [input.providerName, state.providerSubscriptionId],
    )
  ).rows[0];
  if (!row) return undefined;
  if (row.status === 'canceled') return toSubscription(row);
  let status: SubscriptionStatus = state.status;
  let pastDueAt = row.past_due_at;
  let graceEndsAt = row.grace_ends_at;
  if (status === 'past_due') {
    if (row.status === 'unpaid') status = 'unpaid';
    pastDueAt ??= input.at;
    graceEndsAt ??= new Date(pastDueAt.getTime() + input.graceDays * dayMs);
  } else if (status !== 'unpaid') {
    pastDueAt = null;
    graceEndsAt = null;
  }
  // A downgrade waiting for this period end: the renewal into the next period applies it.
  let planId = row.plan_id;
  let amountMinor = Number(row.amount_minor);
  let pending = row.pending_plan_id;
  // The provider's own interval wins (a switch made at the provider); else ours, or the pending one.
  let interval = state.interval ?? row.billing_interval;
  if (row.pending_plan_id && row.pending_change_at && state.currentPeriodStart >= row.pending_change_at) {
    planId = row.pending_plan_id;
    amountMinor = Number(row.pending_amount_minor ?? 0);
    interval = state.interval ?? row.pending_interval ?? row.billing_interval;
    pending = null;
  }
  const changed =
    status !== row.status ||
    planId !== row.plan_id ||
    interval !== row.billing_interval ||
    state.currentPeriodStart.getTime() !== row.current_period_start.getTime() ||
    state.currentPeriodEnd.getTime() !== row.current_period_end.getTime() ||
    state.cancelAtPeriodEnd !== row.cancel_at_period_end ||
    (state.trialEndsAt?.getTime() ?? null) !== (row.trial_ends_at?.getTime() ?? null) ||
    (pastDueAt?.getTime() ?? null) !== (row.past_due_at?.getTime() ?? null);
  if (!changed) return toSubscription(row);
  await tx.query(
    `UPDATE subscriptions SET status = $2, plan_id = $3, amount_minor = $4, current_period_start = $5,
       current_period_end = $6, trial_ends_at = $7, cancel_at_period_end = $8,
       canceled_at = CASE WHEN $2 = 'canceled' THEN coalesce($9, now()) ELSE canceled_at END,
       past_due_at = $10, grace_ends_at = $11,
       pending_plan_id = CASE WHEN $12::uuid IS NULL THEN NULL ELSE pending_plan_id END,
       pending_amount_minor = CASE WHEN $12::uuid IS NULL THEN NULL ELSE pending_amount_minor END,
       pending_change_at = CASE WHEN $12::uuid IS NULL THEN NULL ELSE pending_change_at END,
       provider_event_created = greatest(coalesce(provider_event_created, 0), $13), billing_interval = $14,
       updated_at = now()
     WHERE id = $1`,
    [
      row.id,
      status,
      planId,
      String(amountMinor),
      state.currentPeriodStart,
      state.currentPeriodEnd,
      state.trialEndsAt,
      status === 'canceled' ? false : state.cancelAtPeriodEnd,
      state.canceledAt,
      pastDueAt,
      graceEndsAt,
      pending,
      Math.floor(input.at.getTime() / 1000),
      interval,
    ],
  );
  const action =
    status === row.status
      ? 'subscription.synced'
      : status === 'canceled'
        ? 'subscription.canceled'
        : status === 'past_due'
          ? 'subscription.past_due'
          : (row.status === 'past_due' || row.status === 'unpaid') && (status === 'active' || status === 'trialing')
            ? 'subscription.paid'
            : `subscription.${status}`;
  return recordChange(tx, {
    subscriptionId: row.id,
    action,
    actor: systemActor,
    details: {
      provider: input.providerName,
      from_status: row.status,
      ...(interval === row.billing_interval ? {} : { from_interval: row.billing_interval, interval }),
    },
    invalidations: input.invalidations as Invalidations,
  });
}

/**
 * Turns a completed provider checkout into the team's subscription (replacing a free one). A checkout
 * already completed, or not ours, changes nothing.
 */
export async function completeSubscriptionCheckout(
  tx: Queryable,
  input: {
    providerName: ProviderName;
    sessionId: string;
    state: ProviderSubscriptionState;
    at: Date;
    invalidations: { add(teamId: string): void };
  },
): Promise<Subscription | undefined> {
  const checkout = (
    await tx.query<{
      id: string;
      team_id: string;
      plan_id: string;
      currency: Currency;
      billing_interval: BillingInterval;
      amount_minor: string;
      status: string;
      created_by_user_id: string | null;
    }>(
      `SELECT id, team_id, plan_id, currency, billing_interval, amount_minor, status, created_by_user_id
       FROM subscription_checkouts WHERE provider = $1 AND provider_session_id = $2 FOR UPDATE`,
      [input.providerName, input.sessionId],
    )
  ).rows[0];
  if (!checkout || checkout.status === 'completed') return undefined;
  const plan = (
    await tx.query<{ slug: string; name: string }>('SELECT slug, name FROM plans WHERE id = $1', [checkout.plan_id])
  ).rows[0] as { slug: string; name: string };
  const subscription = await insertSubscription(tx, {
    teamId: checkout.team_id,
    price: {
      planId: checkout.plan_id,
      planSlug: plan.slug,
      planName: plan.name,
      currency: checkout.currency,
      interval: checkout.billing_interval,
      amountMinor: Number(checkout.amount_minor),
      trialDays: 0,
    },
    provider: input.providerName,
    state: input.state,
    syncedAt: Math.floor(input.at.getTime() / 1000),
    actor: systemActor,
    invalidations: input.invalidations as Invalidations,
    replace: true,
  });
  await tx.query(
    `UPDATE subscription_checkouts SET status = 'completed', completed_at = $2, subscription_id = $3 WHERE id = $1`,
    [checkout.id, input.at, subscription.id],
  );
  return subscription;
}

export { Invalidations as SubscriptionInvalidations };

// ---------------------------------------------------------------------------------------------
// The lifecycle job

export interface SubscriptionLifecycleReport {
  /** An invoice left unpaid past its due date made them past_due. */
  pastDue: number;
  /** past_due beyond the grace period: now unpaid, and the gateway answers 402. */
  unpaid: number;
  /** Downgrades applied at their period end. */
  downgraded: number;
  /** Canceled at their period end (manual provider; Stripe reports its own). */
  canceled: number;
  /** Manual subscriptions moved into their next period (a trial ended, or a period renewed). */
  renewed: number;
}

/**
 * What time does to subscriptions: past_due ones whose grace ended become unpaid (teams.payment_required);
 * downgrades apply at their period end; manual subscriptions cancel at the period end when asked to,
 * else renew (a trial becomes active). Stripe subscriptions renew and cancel through Stripe's events.
 * Each subscription changes in its own transaction; running it twice changes nothing more.
 */
export async function runSubscriptionLifecycle(
  options: Pick<SubscriptionServiceOptions, 'database' | 'teamPolicyEvents' | 'logger' | 'now'> & {
    /** TOLLGATE_BILLING_GRACE_DAYS, for subscriptions an overdue invoice makes past due (7 when unset). */
    graceDays?: number | undefined;
  },
): Promise<SubscriptionLifecycleReport> {
  const now = (options.now ?? (() => new Date()))();
  const graceDays = options.graceDays ?? 7;
  const report: SubscriptionLifecycleReport = { unpaid: 0, downgraded: 0, canceled: 0, renewed: 0, pastDue: 0 };
  const due = await options.database.query<{ id: string }>(
    `SELECT id FROM subscriptions s
     WHERE (status = 'past_due' AND grace_ends_at <= $1)
        OR (status <> 'canceled' AND pending_change_at <= $1)
        OR (provider = 'manual' AND status IN ('trialing', 'active') AND current_period_end <= $1)
        OR (status IN ('trialing', 'active') AND EXISTS (
              SELECT 1 FROM invoices i
              WHERE i.subscription_id = s.id AND i.status = 'open' AND i.kind = 'invoice' AND i.due_at <= $1))
     ORDER BY current_period_end LIMIT 1000`,
    [now],
  );
  const invalidations = new Invalidations();
  for (const { id } of due.rows) {
    await options.database.transaction(async (tx) => {
      const row = await rowById(tx, id);
      if (!row || row.status === 'canceled') return;
      // An invoice left unpaid past its due date: past due, the grace running from the due date.
      const overdue = await firstOverdueInvoice(tx, row.team_id, now);
      if (overdue && (row.status === 'trialing' || row.status === 'active')) {
        await setPastDue(tx, row, overdue.due_at, graceDays);
        const changed = await recordChange(tx, {
          subscriptionId: row.id,
          action: 'subscription.past_due',
          actor: systemActor,
          details: { invoice: overdue.number, due_at: overdue.due_at.toISOString() },
          invalidations,
        });
        report.pastDue++;
        // A grace already over (the job ran late) ends now, in the same run.
        if (changed.graceEndsAt && changed.graceEndsAt <= now) {
          await markUnpaid(tx, row.id, changed.graceEndsAt, invalidations);
          report.unpaid++;
        }
        return;
      }
      if (row.status === 'past_due' && row.grace_ends_at && row.grace_ends_at <= now) {
        await markUnpaid(tx, row.id, row.grace_ends_at, invalidations);
        report.unpaid++;
        return;
      }
      if (
        row.provider === 'manual' &&
        row.current_period_end <= now &&
        row.status === 'active' &&
        !row.cancel_at_period_end &&
        row.pending_interval !== null &&
        row.pending_interval !== row.billing_interval
      ) {
        // A switch to another interval at the period end: the next period is the first of a new cycle
        // in the new interval, anchored where the paid one ended; a late job moves one period at a
        // time so that every period passed is recorded and invoiced.
        const interval = row.pending_interval;
        const anchor = row.current_period_end;
        let start = anchor;
        const end = cycleBoundaryAfter(anchor, start, interval);
        await tx.query(
          `UPDATE subscriptions SET current_period_start = $2, current_period_end = $3, plan_id = pending_plan_id,
             amount_minor = pending_amount_minor, billing_interval = pending_interval, pending_plan_id = NULL,
             pending_amount_minor = NULL, pending_change_at = NULL, cycle_anchor_at = $2, updated_at = now()
           WHERE id = $1`,
          [row.id, start, end],
        );
        start = await renewThrough(tx, row.id, { anchor, interval, start, end, now });
        await recordChange(tx, {
          subscriptionId: row.id,
          action: 'subscription.interval_switched',
          actor: systemActor,
          details: {
            from_plan: row.plan_slug,
            from_interval: row.billing_interval,
            to_interval: row.pending_interval,
            period_start: start.toISOString(),
          },
          invalidations,
        });
        report.renewed++;
        return;
      }
      if (row.provider === 'manual' && row.current_period_end <= now && ['trialing', 'active'].includes(row.status)) {
        if (row.cancel_at_period_end) {
          await tx.query(
            `UPDATE subscriptions SET status = 'canceled', canceled_at = current_period_end, cancel_at_period_end = false,
               pending_plan_id = NULL, pending_amount_minor = NULL, pending_change_at = NULL, updated_at = now()
             WHERE id = $1`,
            [row.id],
          );
          await recordChange(tx, {
            subscriptionId: row.id,
            action: 'subscription.canceled',
            actor: systemActor,
            invalidations,
          });
          report.canceled++;
          return;
        }
        // Periods follow each other from the end of the last, counted from the cycle's anchor (a
        // trial's end starts the paid cycle: migration 0029). However late the job runs, it moves one
        // period at a time, so the trigger records every period passed and each is invoiced.
        const anchor = row.status === 'trialing' ? row.current_period_end : row.cycle_anchor_at;
        let start = row.current_period_end;
        const end = cycleBoundaryAfter(anchor, start, row.billing_interval);
        const applyPending = row.pending_plan_id !== null;
        await tx.query(
          `UPDATE subscriptions SET status = 'active', current_period_start = $2, current_period_end = $3,
             cycle_anchor_at = $5, plan_id = CASE WHEN $4 THEN pending_plan_id ELSE plan_id END,
             amount_minor = CASE WHEN $4 THEN pending_amount_minor ELSE amount_minor END,
             pending_plan_id = NULL, pending_amount_minor = NULL, pending_change_at = NULL, updated_at = now()
           WHERE id = $1`,
          [row.id, start, end, applyPending, anchor],
        );
        start = await renewThrough(tx, row.id, { anchor, interval: row.billing_interval, start, end, now });
        await recordChange(tx, {
          subscriptionId: row.id,
          action: applyPending ? pendingChangeAction(row) : 'subscription.renewed',
          actor: systemActor,
          details: { from_plan: row.plan_slug, from_version: row.plan_version, period_start: start.toISOString() },
          invalidations,
        });
        if (applyPending) report.downgraded++;
        else report.renewed++;
        return;
      }
      if (
        row.pending_plan_id &&
        row.pending_change_at &&
        row.pending_change_at <= now &&
        row.pending_interval === null
      ) {
        // A Stripe subscription whose renewal event has not been processed yet: the limits follow our clock.
        // (An interval switch waits for that event: the new interval's period comes from Stripe.)
        await tx.query(
          `UPDATE subscriptions SET plan_id = pending_plan_id, amount_minor = pending_amount_minor,
             pending_plan_id = NULL, pending_amount_minor = NULL, pending_change_at = NULL, updated_at = now()
           WHERE id = $1`,
          [row.id],
        );
        await recordChange(tx, {
          subscriptionId: row.id,
          action: pendingChangeAction(row),
          actor: systemActor,
          details: { from_plan: row.plan_slug, from_version: row.plan_version },
          invalidations,
        });
        report.downgraded++;
      }
    });
  }
  await invalidations.publish(options);
  return report;
}

/** A pending change to another version of the same plan is a migration (subscription-migration.ts). */
const pendingChangeAction = (row: SubscriptionRow) =>
  row.pending_plan_slug === row.plan_slug ? 'subscription.migrated' : 'subscription.downgraded';

/** past_due beyond its grace: unpaid, and the gateway answers 402 (teams.payment_required). */
async function markUnpaid(tx: Queryable, id: string, graceEndedAt: Date, invalidations: Invalidations): Promise<void> {
  await tx.query("UPDATE subscriptions SET status = 'unpaid', updated_at = now() WHERE id = $1", [id]);
  await recordChange(tx, {
    subscriptionId: id,
    action: 'subscription.unpaid',
    actor: systemActor,
    details: { grace_ended_at: graceEndedAt.toISOString() },
    invalidations,
  });
}

/**
 * Moves a subscription whose current period ends at `end` on through every period of its cycle that
 * has ended by `now`, one UPDATE a period, so the billing_periods trigger records (and the period close
 * invoices) each. Returns the start of the period it is in then.
 */
async function renewThrough(
  tx: Queryable,
  id: string,
  cycle: { anchor: Date; interval: BillingInterval; start: Date; end: Date; now: Date },
): Promise<Date> {
  let { start, end } = cycle;
  while (end <= cycle.now) {
    start = end;
    end = cycleBoundaryAfter(cycle.anchor, start, cycle.interval);
    await tx.query(
      'UPDATE subscriptions SET current_period_start = $2, current_period_end = $3, updated_at = now() WHERE id = $1',
      [id, start, end],
    );
  }
  return start;
}

/** The worker job that applies the lifecycle every minute (grace ends, period ends). */
export function subscriptionLifecycleJob(
  options: Pick<SubscriptionServiceOptions, 'database' | 'teamPolicyEvents' | 'logger'> & { graceDays?: number },
): Job {
  return {
    name: 'subscription-lifecycle',
    intervalMs: 60_000,
    async run() {
      const report = await runSubscriptionLifecycle(options);
      if (report.pastDue + report.unpaid + report.downgraded + report.canceled + report.renewed > 0) {
        options.logger.info({ job: 'subscription-lifecycle', ...report }, 'subscriptions moved on');
      }
    },
  };
}
