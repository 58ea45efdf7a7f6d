import type { StripeConfig } from '../config/config.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import type { SubscriptionStatus } from './billing-provider.js';
import { type StripeSubscriptionLike, stripeSubscriptionState } from './stripe-billing-provider.js';
import { createStripeClient, type StripeClientOptions } from './stripe-client.js';

/**
 * Our subscriptions next to Stripe's (docs/billing.md "Reconciliation"): every difference in
 * existence, status, base fee, current period and cancel-at-period-end. Read only: nothing is
 * changed on either side. Invoices join the comparison when our invoices table lands.
 */

export type DifferenceKind =
  | 'missing_in_stripe'
  | 'missing_at_home'
  | 'status_mismatch'
  | 'amount_mismatch'
  | 'period_mismatch'
  | 'cancel_at_period_end_mismatch';

export interface ReconciliationDifference {
  kind: DifferenceKind;
  /** Our subscription id; null for one only Stripe has. */
  subscriptionId: string | null;
  teamId: string | null;
  /** Stripe's sub_... id; null for one of ours Stripe was never told about. */
  stripeSubscriptionId: string | null;
  /** What we hold and what Stripe holds, as text ("active", "1000 USD", an ISO period). */
  ours: string | null;
  stripe: string | null;
}

export interface ReconciliationReport {
  /** false: no Stripe settings, nothing to reconcile against. */
  configured: boolean;
  /** Subscriptions looked at on each side. */
  compared: { ours: number; stripe: number };
  differences: ReconciliationDifference[];
}

interface OurRow {
  id: string;
  team_id: string;
  status: SubscriptionStatus;
  currency: string;
  amount_minor: string;
  current_period_start: Date;
  current_period_end: Date;
  cancel_at_period_end: boolean;
  provider_subscription_id: string | null;
}

const period = (start: Date, end: Date) => `${start.toISOString()}/${end.toISOString()}`;

/** A status we decided on our own and Stripe cannot know: unpaid after the grace, while Stripe says past_due. */
const sameStatus = (ours: SubscriptionStatus, stripe: SubscriptionStatus) =>
  ours === stripe || (ours === 'unpaid' && stripe === 'past_due');

/** Compares our Stripe subscriptions with Stripe's (every status, through the SDK's auto-pagination). */
export async function reconcileWithStripe(
  db: Queryable,
  input: { stripe: StripeConfig | undefined; clientOptions?: StripeClientOptions },
): Promise<ReconciliationReport> {
  if (!input.stripe?.secretKey) return { configured: false, compared: { ours: 0, stripe: 0 }, differences: [] };
  const client = await createStripeClient(input.stripe, input.clientOptions);
  const theirs = new Map<string, StripeSubscriptionLike>();
  try {
    for await (const subscription of client.subscriptions.list({ status: 'all', limit: 100 })) {
      theirs.set(subscription.id, subscription as unknown as StripeSubscriptionLike);
    }
  } catch (error) {
    throw new TollgateError(
      'provider_unavailable',
      `Stripe could not list its subscriptions: ${(error as Error).message}`,
      {
        hint: 'check STRIPE_SECRET_KEY and STRIPE_API_BASE, then run it again',
        cause: error,
      },
    );
  }
  const ours = (
    await db.query<OurRow>(
      `SELECT id, team_id, status, currency, amount_minor::text, current_period_start, current_period_end,
         cancel_at_period_end, provider_subscription_id
       FROM subscriptions WHERE provider = 'stripe' ORDER BY created_at, id`,
    )
  ).rows;
  const differences: ReconciliationDifference[] = [];
  const seen = new Set<string>();
  for (const row of ours) {
    const base = { subscriptionId: row.id, teamId: row.team_id, stripeSubscriptionId: row.provider_subscription_id };
    const remote = row.provider_subscription_id ? theirs.get(row.provider_subscription_id) : undefined;
    if (!remote) {
      if (row.status !== 'canceled') {
        differences.push({ kind: 'missing_in_stripe', ...base, ours: row.status, stripe: null });
      }
      continue;
    }
    seen.add(remote.id);
    const state = stripeSubscriptionState(remote);
    if (!sameStatus(row.status, state.status)) {
      differences.push({ kind: 'status_mismatch', ...base, ours: row.status, stripe: state.status });
    }
    // A canceled subscription's fee, period and cancel flag no longer matter.
    if (row.status === 'canceled' && state.status === 'canceled') continue;
    const item = remote.items.data[0];
    const stripeCurrency = item?.price.currency.toUpperCase() ?? null;
    const currency = row.currency.trim();
    if (state.amountMinor !== Number(row.amount_minor) || stripeCurrency !== currency) {
      differences.push({
        kind: 'amount_mismatch',
        ...base,
        ours: `${row.amount_minor} ${currency}`,
        stripe: `${state.amountMinor ?? 'none'} ${stripeCurrency ?? ''}`.trim(),
      });
    }
    const oursPeriod = period(row.current_period_start, row.current_period_end);
    const stripePeriod = period(state.currentPeriodStart, state.currentPeriodEnd);
    if (oursPeriod !== stripePeriod) {
      differences.push({ kind: 'period_mismatch', ...base, ours: oursPeriod, stripe: stripePeriod });
    }
    if (row.cancel_at_period_end !== state.cancelAtPeriodEnd) {
      differences.push({
        kind: 'cancel_at_period_end_mismatch',
        ...base,
        ours: String(row.cancel_at_period_end),
        stripe: String(state.cancelAtPeriodEnd),
      });
    }
  }
  for (const remote of theirs.values()) {
    if (seen.has(remote.id)) continue;
    const state = stripeSubscriptionState(remote);
    if (state.status === 'canceled') continue;
    differences.push({
      kind: 'missing_at_home',
      subscriptionId: null,
      teamId: null,
      stripeSubscriptionId: remote.id,
      ours: null,
      stripe: state.status,
    });
  }
  return { configured: true, compared: { ours: ours.length, stripe: theirs.size }, differences };
}
