import type { BillingInterval } from '../plans/plan-schemas.js';
import type { Queryable } from '../storage/database.js';
import type { Currency } from './pricing-schema.js';

/**
 * Who collects a subscription's money. Small on purpose: what a PayPal implementation would have to
 * say too. The subscription state machine (subscriptions.ts) owns our rows; a provider only talks to
 * its service and reports what that service says.
 */
export type ProviderName = 'manual' | 'stripe';

export type SubscriptionStatus = 'trialing' | 'active' | 'past_due' | 'canceled' | 'unpaid';

/** What a provider says about one subscription, in our words. */
export interface ProviderSubscriptionState {
  /** The provider's id of the subscription; null for the manual provider. */
  providerSubscriptionId: string | null;
  providerCustomerId: string | null;
  status: SubscriptionStatus;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  trialEndsAt: Date | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  /** Our plan version id as the provider carries it (Stripe: subscription metadata), when it does. */
  planId: string | null;
  /** minor units, e.g. cents: the recurring fee the provider charges per interval. */
  amountMinor: number | null;
  /** The billing interval the provider charges in, when it says (Stripe: the item price's recurring interval). */
  interval?: BillingInterval | null;
}

/** A plan version's price as one subscription would pay it. */
export interface PricedPlan {
  planId: string;
  planSlug: string;
  planName: string;
  currency: Currency;
  interval: BillingInterval;
  /** minor units, e.g. cents */
  amountMinor: number;
  /** 0: no trial. */
  trialDays: number;
}

export interface StartSubscriptionInput {
  teamId: string;
  teamName: string;
  /** Our id for this attempt (a checkout row or the subscription row): the idempotency key's id. */
  attemptId: string;
  price: PricedPlan;
  /** Where the provider's hosted page sends the customer back. */
  returnUrl: string;
  now: Date;
}

export type StartSubscriptionResult =
  /** Live at once (the manual provider; a trial, which needs no card). */
  | { kind: 'started'; state: ProviderSubscriptionState }
  /** The customer pays on the provider's page; the subscription starts when the provider says so. */
  | {
      kind: 'checkout';
      url: string;
      sessionId: string /** When the page stops taking the payment. */;
      expiresAt?: Date;
    };

export interface ProviderSubscriptionRef {
  /** Our subscription id. */
  id: string;
  teamId: string;
  providerSubscriptionId: string | null;
}

/** A one-off payment, such as a credit pack, on the provider's hosted page. */
export interface StartPaymentInput {
  teamId: string;
  teamName: string;
  /** Our purchase id: the idempotency key's id, and carried in the provider's metadata. */
  purchaseId: string;
  currency: Currency;
  /** minor units, e.g. cents */
  amountMinor: bigint;
  /** What the customer sees on the payment page, e.g. the pack's name. */
  description: string;
  /** Carried on the session and its payment (Stripe metadata): team, pack, purchase. */
  metadata: Record<string, string>;
  returnUrl: string;
}

export interface BillingProvider {
  readonly name: ProviderName;
  /**
   * Starts a one-off payment at the provider's hosted page. Absent (the manual provider): the
   * purchase stays pending until an operator confirms the payment.
   */
  startPayment?(db: Queryable, input: StartPaymentInput): Promise<{ url: string; sessionId: string }>;
  /** The team's customer at the provider, created once (idempotent); null for the manual provider. */
  ensureCustomer(db: Queryable, team: { id: string; name: string }): Promise<string | null>;
  startSubscription(db: Queryable, input: StartSubscriptionInput): Promise<StartSubscriptionResult>;
  /**
   * Moves a subscription to another price: `now` (an upgrade: the provider prorates the rest of the
   * period and bills the difference) or from the next period (`period_end`, a downgrade: no
   * proration, the next renewal charges the new price). A price in another interval `now` starts a
   * new period now (Stripe: `billing_cycle_anchor: 'now'`), except during a trial; at `period_end` it
   * takes effect when the current period ends. Returns the provider's state after it.
   */
  changePlan(
    subscription: ProviderSubscriptionRef,
    price: PricedPlan,
    options: { actionId: string; when: 'now' | 'period_end'; now: Date },
  ): Promise<ProviderSubscriptionState | null>;
  /** Cancels now, or at the period end (`atPeriodEnd`), and returns the provider's state after it. */
  cancel(
    subscription: ProviderSubscriptionRef,
    options: { atPeriodEnd: boolean; actionId: string; now: Date },
  ): Promise<ProviderSubscriptionState | null>;
  /**
   * Ends an open hosted checkout so it can no longer be paid (Stripe: expire the Checkout Session);
   * absent: the provider has none. A session already completed or expired is left as it is.
   */
  expireCheckout?(sessionId: string, options: { actionId: string }): Promise<void>;
  /** Undoes a cancel at the period end. */
  resume(
    subscription: ProviderSubscriptionRef,
    options: { actionId: string; now: Date },
  ): Promise<ProviderSubscriptionState | null>;
  /** What the provider says about a subscription now; undefined when it does not know it. */
  fetchSubscription(providerSubscriptionId: string): Promise<ProviderSubscriptionState | undefined>;
  /** Collects our invoices (period-close.ts pushes them); absent: an operator marks them paid. */
  readonly invoices?: ProviderInvoices;
}

/**
 * The calls that push one of our invoices to a provider. Each takes our id and derives the
 * idempotency key from it, so a push resumed after a crash repeats a call instead of duplicating it.
 */
export interface ProviderInvoices {
  /** An empty draft invoice for `invoiceId` (ours); returns the provider's id. */
  createInvoice(input: { invoiceId: string; customerId: string; currency: Currency; number: string }): Promise<string>;
  /** One line of ours as an item of the provider's draft invoice; returns the item id and the key used. */
  addItem(input: {
    lineId: string;
    customerId: string;
    providerInvoiceId: string;
    currency: Currency;
    /** minor units, e.g. cents; negative for a credit */
    amountMinor: bigint;
    description: string;
  }): Promise<{ itemId: string; idempotencyKey: string }>;
  /** Finalizes the provider's invoice (it then collects it). */
  finalize(input: { invoiceId: string; providerInvoiceId: string }): Promise<void>;
  /**
   * Voids the provider's finalized invoice (ours was voided). Throws a TollgateError
   * `invoice_not_voidable` when the provider refuses (it was paid there in the meantime).
   */
  voidInvoice(input: { invoiceId: string; providerInvoiceId: string }): Promise<void>;
  /** A credit note of the provider's invoice for one of ours (`creditNoteId`); returns the provider's id. */
  createCreditNote(input: {
    creditNoteId: string;
    providerInvoiceId: string;
    /** minor units, e.g. cents; more than 0 */
    amountMinor: bigint;
    memo: string;
  }): Promise<string>;
}

/** `date` plus whole calendar months in UTC, on the last day of a shorter month (Jan 31 + 1 = Feb 28/29). */
export function addMonths(date: Date, months: number): Date {
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const result = new Date(date.getTime());
  result.setUTCFullYear(year, month, Math.min(date.getUTCDate(), lastDay));
  return result;
}

/** The end of a billing period of `interval` starting at `start`. */
export function periodEnd(start: Date, interval: BillingInterval): Date {
  return addMonths(start, interval === 'year' ? 12 : 1);
}

/**
 * The first period boundary of a billing cycle after `after`: the cycle's periods are whole months
 * (or years) counted from its `anchor`, each from the anchor itself rather than from the period
 * before, so an anchor on the 31st gives Feb 28/29 and then Mar 31 again (no drift).
 */
export function cycleBoundaryAfter(anchor: Date, after: Date, interval: BillingInterval): Date {
  const step = interval === 'year' ? 12 : 1;
  const monthsApart =
    (after.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + (after.getUTCMonth() - anchor.getUTCMonth());
  let k = Math.max(1, Math.floor(monthsApart / step) - 1);
  let boundary = addMonths(anchor, k * step);
  while (boundary.getTime() <= after.getTime()) {
    k++;
    boundary = addMonths(anchor, k * step);
  }
  return boundary;
}

/**
 * The embedded default, without provider keys: a subscription starts at once (a trial when the plan
 * has trial days, otherwise active) and an operator marks its invoices paid later. Nothing leaves
 * this process, so every method answers from the state machine's own numbers.
 */
export function createManualBillingProvider(): BillingProvider {
  return {
    name: 'manual',
    ensureCustomer: async () => null,
    async startSubscription(_db, input) {
      const trialEnd =
        input.price.trialDays > 0 ? new Date(input.now.getTime() + input.price.trialDays * 86_400_000) : null;
      return {
        kind: 'started',
        state: {
          providerSubscriptionId: null,
          providerCustomerId: null,
          status: trialEnd ? 'trialing' : 'active',
          currentPeriodStart: input.now,
          // A trial is its own first period; the first paid period starts when it ends (as on Stripe).
          currentPeriodEnd: trialEnd ?? periodEnd(input.now, input.price.interval),
          trialEndsAt: trialEnd,
          cancelAtPeriodEnd: false,
          canceledAt: null,
          planId: input.price.planId,
          amountMinor: input.price.amountMinor,
        },
      };
    },
    changePlan: async () => null,
    cancel: async () => null,
    resume: async () => null,
    fetchSubscription: async () => undefined,
  };
}
