import type { StripeConfig } from '../config/config.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import type { SubscriptionStatus } from './billing-provider.js';
import { type StripeSubscriptionLike, stripeSubscriptionState } from './stripe-billing-provider.js';
import { createStripeClient, type StripeClientOptions } from './stripe-client.js';

/**
 * Our subscriptions next to Stripe's (docs/billing.md "Reconciliation"): every difference in
 * existence, status, base fee, current period and cancel-at-period-end; and our invoices pushed to
 * Stripe next to the Stripe invoices that carry our id (`metadata.tollgate_invoice_id`): existence,
 * and once finalized, status and total. Read only: nothing is changed on either side.
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
  /** What differs: a subscription, an invoice we pushed to Stripe, or a credit note of one. */
  object: 'subscription' | 'invoice' | 'credit_note';
  /** Our subscription id; null for one only Stripe has. */
  subscriptionId: string | null;
  teamId: string | null;
  /** Stripe's sub_... id; null for one of ours Stripe was never told about. */
  stripeSubscriptionId: string | null;
  /**
   * Our invoice id and Stripe's in_... id, for an invoice difference; for a credit note, our credit
   * note's id and Stripe's cn_... id (null when it was never pushed); null for a subscription.
   */
  invoiceId: string | null;
  stripeInvoiceId: string | null;
  /** What we hold and what Stripe holds, as text ("active", "1000 USD", an ISO period). */
  ours: string | null;
  stripe: string | null;
}

export interface ReconciliationReport {
  /** false: no Stripe settings, nothing to reconcile against. */
  configured: boolean;
  /** Subscriptions looked at on each side. */
  compared: { ours: number; stripe: number; oursInvoices: number; stripeInvoices: number };
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
  if (!input.stripe?.secretKey) {
    return {
      configured: false,
      compared: { ours: 0, stripe: 0, oursInvoices: 0, stripeInvoices: 0 },
      differences: [],
    };
  }
  const client = await createStripeClient(input.stripe, input.clientOptions);
  const theirs = new Map<string, StripeSubscriptionLike>();
  const theirInvoices = new Map<string, StripeInvoiceLike>();
  const theirCreditNotes = new Set<string>();
  try {
    for await (const subscription of client.subscriptions.list({ status: 'all', limit: 100 })) {
      theirs.set(subscription.id, subscription as unknown as StripeSubscriptionLike);
    }
    // Only the invoices we pushed: Stripe's own subscription invoices are not in our ledger.
    for await (const invoice of client.invoices.list({ limit: 100 })) {
      if (invoice.id && invoice.metadata?.tollgate_invoice_id)
        theirInvoices.set(invoice.id, invoice as StripeInvoiceLike);
    }
    for await (const note of client.creditNotes.list({ limit: 100 })) {
      if (note.metadata?.tollgate_credit_note_id) theirCreditNotes.add(note.id);
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
  const subscriptionBase = { object: 'subscription' as const, invoiceId: null, stripeInvoiceId: null };
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
    const base = {
      ...subscriptionBase,
      subscriptionId: row.id,
      teamId: row.team_id,
      stripeSubscriptionId: row.provider_subscription_id,
    };
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
      ...subscriptionBase,
      kind: 'missing_at_home',
      subscriptionId: null,
      teamId: null,
      stripeSubscriptionId: remote.id,
      ours: null,
      stripe: state.status,
    });
  }
  const oursInvoices = await compareInvoices(db, theirInvoices, differences);
  await findCreditNotesMissingInStripe(db, theirCreditNotes, differences);
  return {
    configured: true,
    compared: { ours: ours.length, stripe: theirs.size, oursInvoices, stripeInvoices: theirInvoices.size },
    differences,
  };
}

/** The fields of a Stripe invoice we read. */
interface StripeInvoiceLike {
  id: string;
  status: string | null;
  total: number;
  currency: string;
  metadata: Record<string, string> | null;
}

interface OurInvoiceRow {
  id: string;
  team_id: string;
  subscription_id: string;
  status: string;
  currency: string;
  total_minor: string;
  push_state: string;
  provider_invoice_id: string;
}

/** Stripe's `uncollectible` is still owed, as our `open`. */
const invoiceStatus = (stripe: string | null) => (stripe === 'uncollectible' ? 'open' : (stripe ?? 'draft'));

/** Our invoices pushed to Stripe against Stripe's invoices carrying our id; returns how many of ours. */
async function compareInvoices(
  db: Queryable,
  theirs: Map<string, StripeInvoiceLike>,
  differences: ReconciliationDifference[],
): Promise<number> {
  const ours = (
    await db.query<OurInvoiceRow>(
      `SELECT id, team_id, subscription_id, status, currency, total_minor::text, push_state, provider_invoice_id
       FROM invoices WHERE provider = 'stripe' AND provider_invoice_id IS NOT NULL ORDER BY created_at, id`,
    )
  ).rows;
  const seen = new Set<string>();
  for (const row of ours) {
    const base = {
      object: 'invoice' as const,
      subscriptionId: row.subscription_id,
      teamId: row.team_id,
      stripeSubscriptionId: null,
      invoiceId: row.id,
      stripeInvoiceId: row.provider_invoice_id,
    };
    const remote = theirs.get(row.provider_invoice_id);
    if (!remote) {
      differences.push({ ...base, kind: 'missing_in_stripe', ours: row.status, stripe: null });
      continue;
    }
    seen.add(remote.id);
    // Until the push finished, Stripe's draft is still being filled: nothing to compare yet.
    if (row.push_state !== 'finalized') continue;
    if (invoiceStatus(remote.status) !== row.status) {
      differences.push({ ...base, kind: 'status_mismatch', ours: row.status, stripe: remote.status });
    }
    const currency = row.currency.trim();
    if (String(remote.total) !== row.total_minor || remote.currency.toUpperCase() !== currency) {
      differences.push({
        ...base,
        kind: 'amount_mismatch',
        ours: `${row.total_minor} ${currency}`,
        stripe: `${remote.total} ${remote.currency.toUpperCase()}`,
      });
    }
  }
  for (const remote of theirs.values()) {
    if (seen.has(remote.id)) continue;
    differences.push({
      object: 'invoice',
      kind: 'missing_at_home',
      subscriptionId: null,
      teamId: null,
      stripeSubscriptionId: null,
      invoiceId: remote.metadata?.tollgate_invoice_id ?? null,
      stripeInvoiceId: remote.id,
      ours: null,
      stripe: remote.status,
    });
  }
  return ours.length;
}

/**
 * Our credit notes of invoices pushed to Stripe that Stripe does not hold: still pending (their push
 * failed or waits for the invoice's), or pushed under an id Stripe no longer knows. The period close
 * pushes pending ones again; the difference says which are still owed to Stripe.
 */
async function findCreditNotesMissingInStripe(
  db: Queryable,
  theirs: Set<string>,
  differences: ReconciliationDifference[],
): Promise<void> {
  const ours = await db.query<{
    id: string;
    team_id: string;
    subscription_id: string;
    currency: string;
    total_minor: string;
    push_state: string;
    provider_credit_note_id: string | null;
  }>(
    `SELECT id, team_id, subscription_id, currency, total_minor::text, push_state, provider_credit_note_id
     FROM invoices WHERE kind = 'credit_note' AND provider = 'stripe' AND push_state <> 'none' ORDER BY created_at, id`,
  );
  for (const row of ours.rows) {
    if (row.provider_credit_note_id && theirs.has(row.provider_credit_note_id)) continue;
    differences.push({
      object: 'credit_note',
      kind: 'missing_in_stripe',
      subscriptionId: row.subscription_id,
      teamId: row.team_id,
      stripeSubscriptionId: null,
      invoiceId: row.id,
      stripeInvoiceId: row.provider_credit_note_id,
      ours: `${-BigInt(row.total_minor)} ${row.currency.trim()} (${row.push_state})`,
      stripe: null,
    });
  }
}
