import type Stripe from 'stripe';
import type { StripeConfig } from '../config/config.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import type {
  BillingProvider,
  PricedPlan,
  ProviderSubscriptionRef,
  ProviderSubscriptionState,
  SubscriptionStatus,
} from './billing-provider.js';
import { createStripeClient, idempotencyKey, type StripeClientOptions } from './stripe-client.js';

/** The fields of a Stripe subscription we read (periods sit on the items since API 2025-03-31). */
export interface StripeSubscriptionLike {
  id: string;
  status: string;
  customer: string | { id: string };
  cancel_at_period_end: boolean;
  cancel_at?: number | null;
  canceled_at: number | null;
  trial_end: number | null;
  current_period_start?: number;
  current_period_end?: number;
  metadata: Record<string, string>;
  /** The subscription schedule that changes it at a set time (a switch to a shorter interval). */
  schedule?: string | { id: string } | null;
  items: {
    data: {
      id: string;
      current_period_start?: number;
      current_period_end?: number;
      price: { id?: string; unit_amount: number | null; currency: string; recurring?: { interval: string } | null };
    }[];
  };
}

/** Stripe's statuses in ours: an incomplete first payment counts as past due, a paused one as unpaid. */
const statusMap: Record<string, SubscriptionStatus> = {
  trialing: 'trialing',
  active: 'active',
  past_due: 'past_due',
  incomplete: 'past_due',
  unpaid: 'unpaid',
  paused: 'unpaid',
  canceled: 'canceled',
  incomplete_expired: 'canceled',
};

const date = (seconds: number) => new Date(seconds * 1000);

/** What a Stripe subscription says, in our words. */
export function stripeSubscriptionState(subscription: StripeSubscriptionLike): ProviderSubscriptionState {
  const item = subscription.items.data[0];
  const start = item?.current_period_start ?? subscription.current_period_start ?? 0;
  const end = item?.current_period_end ?? subscription.current_period_end ?? start + 1;
  return {
    providerSubscriptionId: subscription.id,
    providerCustomerId: typeof subscription.customer === 'string' ? subscription.customer : subscription.customer.id,
    status: statusMap[subscription.status] ?? 'past_due',
    currentPeriodStart: date(start),
    currentPeriodEnd: date(end),
    trialEndsAt: subscription.trial_end === null ? null : date(subscription.trial_end),
    cancelAtPeriodEnd:
      subscription.cancel_at_period_end || (subscription.cancel_at !== undefined && subscription.cancel_at !== null),
    canceledAt: subscription.canceled_at === null ? null : date(subscription.canceled_at),
    planId: subscription.metadata.tollgate_plan_id ?? null,
    amountMinor: item?.price.unit_amount ?? null,
    interval:
      item?.price.recurring?.interval === 'year' || item?.price.recurring?.interval === 'month'
        ? item.price.recurring.interval
        : null,
  };
}

/** The Stripe product of a plan version: one per version, with an id derived from ours. */
const productId = (planId: string) => `tollgate_plan_${planId.replaceAll('-', '')}`;

function isStripeError(error: unknown, code: string): boolean {
  return (error as { code?: unknown } | null)?.code === code;
}

/**
 * Subscriptions through Stripe (docs/stripe.md). Customers are created once per team with the
 * idempotency key `customer:<team id>`; a paid plan starts at a Checkout Session in subscription mode
 * whose recurring `price_data` is our plan version's price; a trial starts at once through the API
 * with `trial_period_days` and no card (Stripe invoices at its end); upgrades update the item with
 * `create_prorations`, so Stripe prorates and bills the difference itself.
 */
export function createStripeBillingProvider(config: StripeConfig, options: StripeClientOptions = {}): BillingProvider {
  let client: Promise<Stripe> | undefined;
  const stripe = () => {
    client ??= createStripeClient(config, options);
    return client;
  };

  async function ensureProduct(price: PricedPlan): Promise<string> {
    const sdk = await stripe();
    const id = productId(price.planId);
    try {
      await sdk.products.retrieve(id);
      return id;
    } catch (error) {
      if (!isStripeError(error, 'resource_missing')) throw error;
    }
    try {
      await sdk.products.create(
        { id, name: price.planName, metadata: { tollgate_plan_id: price.planId, tollgate_plan_slug: price.planSlug } },
        { idempotencyKey: idempotencyKey('product', price.planId) },
      );
    } catch (error) {
      // Created in between by another request: the same product.
      if (!isStripeError(error, 'resource_already_exists')) throw error;
    }
    return id;
  }

  async function priceData(price: PricedPlan) {
    return {
      currency: price.currency.toLowerCase(),
      unit_amount: price.amountMinor,
      recurring: { interval: price.interval },
      product: await ensureProduct(price),
    };
  }

  const state = (subscription: unknown) => stripeSubscriptionState(subscription as StripeSubscriptionLike);

  const provider: BillingProvider = {
    name: 'stripe',
    async ensureCustomer(db: Queryable, team) {
      const known = await db.query<{ customer_id: string }>(
        "SELECT customer_id FROM billing_customers WHERE team_id = $1 AND provider = 'stripe'",
        [team.id],
      );
      if (known.rows[0]) return known.rows[0].customer_id;
      const customer = await (await stripe()).customers.create(
        { name: team.name, metadata: { tollgate_team_id: team.id } },
        { idempotencyKey: idempotencyKey('customer', team.id) },
      );
      await db.query(
        `INSERT INTO billing_customers (team_id, provider, customer_id) VALUES ($1, 'stripe', $2)
         ON CONFLICT (team_id, provider) DO NOTHING`,
        [team.id, customer.id],
      );
      const stored = await db.query<{ customer_id: string }>(
        "SELECT customer_id FROM billing_customers WHERE team_id = $1 AND provider = 'stripe'",
        [team.id],
      );
      return stored.rows[0]?.customer_id ?? customer.id;
    },

    async startSubscription(db, input) {
      const customer = (await provider.ensureCustomer(db, { id: input.teamId, name: input.teamName })) as string;
      const metadata = {
        tollgate_team_id: input.teamId,
        tollgate_plan_id: input.price.planId,
        tollgate_attempt_id: input.attemptId,
      };
      const sdk = await stripe();
      if (input.price.trialDays > 0) {
        // A trial needs no card: Stripe invoices at its end, and a missing card makes that invoice past due.
        const subscription = await sdk.subscriptions.create(
          {
            customer,
            items: [{ price_data: await priceData(input.price) }],
            trial_period_days: input.price.trialDays,
            payment_behavior: 'default_incomplete',
            metadata,
          },
          { idempotencyKey: idempotencyKey('subscription', input.attemptId) },
        );
        return { kind: 'started', state: state(subscription) };
      }
      const session = await sdk.checkout.sessions.create(
        {
          mode: 'subscription',
          customer,
          client_reference_id: input.teamId,
          line_items: [{ price_data: await priceData(input.price), quantity: 1 }],
          metadata,
          subscription_data: { metadata },
          success_url: input.returnUrl,
          cancel_url: input.returnUrl,
        },
        { idempotencyKey: idempotencyKey('checkout', input.attemptId) },
      );
      if (!session.url) throw new Error(`Stripe returned Checkout Session ${session.id} without a URL`);
      return {
        kind: 'checkout',
        url: session.url,
        sessionId: session.id,
        expiresAt: new Date(session.expires_at * 1000),
      };
    },

    async startPayment(db, input) {
      const customer = (await provider.ensureCustomer(db, { id: input.teamId, name: input.teamName })) as string;
      const session = await (await stripe()).checkout.sessions.create(
        {
          mode: 'payment',
          customer,
          client_reference_id: input.teamId,
          line_items: [
            {
              price_data: {
                currency: input.currency.toLowerCase(),
                unit_amount: Number(input.amountMinor),
                product_data: { name: input.description },
              },
              quantity: 1,
            },
          ],
          metadata: input.metadata,
          // The payment intent carries them too: payment_intent.succeeded grants the pack from them.
          payment_intent_data: { metadata: input.metadata, description: input.description },
          success_url: input.returnUrl,
          cancel_url: input.returnUrl,
        },
        { idempotencyKey: idempotencyKey('credit-purchase', input.purchaseId) },
      );
      if (!session.url) throw new Error(`Stripe returned Checkout Session ${session.id} without a URL`);
      return { url: session.url, sessionId: session.id };
    },

    async changePlan(ref: ProviderSubscriptionRef, price, options) {
      if (!ref.providerSubscriptionId) return null;
      const sdk = await stripe();
      const current = (await sdk.subscriptions.retrieve(
        ref.providerSubscriptionId,
      )) as unknown as StripeSubscriptionLike;
      const item = current.items.data[0];
      const otherInterval =
        item?.price.recurring?.interval !== undefined && item.price.recurring.interval !== price.interval;
      // A change made now, or another one for the period end, replaces a switch waiting in a schedule.
      const scheduled = typeof current.schedule === 'string' ? current.schedule : current.schedule?.id;
      if (scheduled) {
        await sdk.subscriptionSchedules.release(
          scheduled,
          {},
          { idempotencyKey: idempotencyKey('subscription-schedule-release', options.actionId) },
        );
      }
      if (otherInterval && options.when === 'period_end' && current.status !== 'trialing') {
        // Stripe resets the billing cycle whenever the interval changes, so a switch at the period end
        // is a schedule: this period as it is, then the new price from its end, then released.
        const schedule = await sdk.subscriptionSchedules.create(
          { from_subscription: ref.providerSubscriptionId },
          { idempotencyKey: idempotencyKey('subscription-schedule', options.actionId) },
        );
        const phase = schedule.phases[0];
        await sdk.subscriptionSchedules.update(
          schedule.id,
          {
            end_behavior: 'release',
            phases: [
              {
                items: [{ price: item?.price.id ?? '', quantity: 1 }],
                ...(phase ? { start_date: phase.start_date, end_date: phase.end_date } : {}),
              },
              {
                items: [{ price_data: await priceData(price), quantity: 1 }],
                duration: { interval: price.interval, interval_count: 1 },
                proration_behavior: 'none',
                metadata: { tollgate_plan_id: price.planId },
              },
            ],
          },
          { idempotencyKey: idempotencyKey('subscription-schedule-phases', options.actionId) },
        );
        return state(await sdk.subscriptions.retrieve(ref.providerSubscriptionId));
      }
      const resetCycle: Stripe.SubscriptionUpdateParams = { billing_cycle_anchor: { type: 'now' } };
      const updated = await sdk.subscriptions.update(
        ref.providerSubscriptionId,
        {
          items: [{ ...(item ? { id: item.id } : {}), price_data: await priceData(price) }],
          proration_behavior: options.when === 'now' ? 'create_prorations' : 'none',
          // Another interval starts a new period now (Stripe would reset the cycle anyway); a trial keeps its end.
          ...(otherInterval && options.when === 'now' && current.status !== 'trialing' ? resetCycle : {}),
          metadata: { tollgate_plan_id: price.planId },
        },
        { idempotencyKey: idempotencyKey('subscription-change', options.actionId) },
      );
      return state(updated);
    },

    async cancel(ref, options) {
      if (!ref.providerSubscriptionId) return null;
      const sdk = await stripe();
      const key = { idempotencyKey: idempotencyKey('subscription-cancel', options.actionId) };
      if (options.atPeriodEnd) {
        // Stripe refuses to change the cancel behaviour of a subscription a schedule manages (a switch
        // to monthly waiting for the period end): the cancel replaces that switch.
        const current = (await sdk.subscriptions.retrieve(
          ref.providerSubscriptionId,
        )) as unknown as StripeSubscriptionLike;
        const scheduled = typeof current.schedule === 'string' ? current.schedule : current.schedule?.id;
        if (scheduled) {
          await sdk.subscriptionSchedules.release(
            scheduled,
            {},
            { idempotencyKey: idempotencyKey('subscription-schedule-release', options.actionId) },
          );
        }
      }
      const updated = options.atPeriodEnd
        ? await sdk.subscriptions.update(ref.providerSubscriptionId, { cancel_at_period_end: true }, key)
        : await sdk.subscriptions.cancel(ref.providerSubscriptionId, {}, key);
      return state(updated);
    },

    async expireCheckout(sessionId, options) {
      const sdk = await stripe();
      const session = await sdk.checkout.sessions.retrieve(sessionId);
      if (session.status !== 'open') return;
      await sdk.checkout.sessions.expire(
        sessionId,
        {},
        { idempotencyKey: idempotencyKey('checkout-expire', options.actionId) },
      );
    },

    async resume(ref, options) {
      if (!ref.providerSubscriptionId) return null;
      const updated = await (await stripe()).subscriptions.update(
        ref.providerSubscriptionId,
        { cancel_at_period_end: false },
        { idempotencyKey: idempotencyKey('subscription-resume', options.actionId) },
      );
      return state(updated);
    },

    invoices: {
      async createInvoice(input) {
        const invoice = await (await stripe()).invoices.create(
          {
            customer: input.customerId,
            currency: input.currency.toLowerCase(),
            collection_method: 'charge_automatically',
            auto_advance: false,
            pending_invoice_items_behavior: 'exclude',
            description: `Tollgate invoice ${input.number}`,
            metadata: { tollgate_invoice_id: input.invoiceId },
          },
          { idempotencyKey: idempotencyKey('invoice', input.invoiceId) },
        );
        return invoice.id;
      },
      async addItem(input) {
        const key = idempotencyKey('invoice-item', input.lineId);
        const item = await (await stripe()).invoiceItems.create(
          {
            customer: input.customerId,
            invoice: input.providerInvoiceId,
            currency: input.currency.toLowerCase(),
            amount: Number(input.amountMinor),
            description: input.description,
            metadata: { tollgate_invoice_line_id: input.lineId },
          },
          { idempotencyKey: key },
        );
        return { itemId: item.id, idempotencyKey: key };
      },
      async finalize(input) {
        await (await stripe()).invoices.finalizeInvoice(
          input.providerInvoiceId,
          { auto_advance: true },
          { idempotencyKey: idempotencyKey('invoice-finalize', input.invoiceId) },
        );
      },
      async voidInvoice(input) {
        try {
          await (await stripe()).invoices.voidInvoice(
            input.providerInvoiceId,
            {},
            { idempotencyKey: idempotencyKey('invoice-void', input.invoiceId) },
          );
        } catch (error) {
          // Stripe voids only open (or uncollectible) invoices: it was paid there meanwhile.
          if (isStripeError(error, 'invoice_not_editable')) {
            throw new TollgateError(
              'invoice_not_voidable',
              `Stripe refused to void ${input.providerInvoiceId}: ${(error as Error).message}`,
              { hint: 'the invoice was paid at Stripe: issue a credit note instead', cause: error },
            );
          }
          throw error;
        }
      },
      async createCreditNote(input) {
        const sdk = await stripe();
        // A paid invoice's credit goes to the customer's balance (the next invoice is reduced);
        // an open one's reduces what is still due on it.
        const invoice = await sdk.invoices.retrieve(input.providerInvoiceId);
        const amount = Number(input.amountMinor);
        const note = await sdk.creditNotes.create(
          {
            invoice: input.providerInvoiceId,
            amount,
            ...(invoice.status === 'paid' ? { credit_amount: amount } : {}),
            memo: input.memo,
            metadata: { tollgate_credit_note_id: input.creditNoteId },
          },
          { idempotencyKey: idempotencyKey('credit-note', input.creditNoteId) },
        );
        return note.id;
      },
    },

    async fetchSubscription(providerSubscriptionId) {
      try {
        return state(await (await stripe()).subscriptions.retrieve(providerSubscriptionId));
      } catch (error) {
        if (isStripeError(error, 'resource_missing')) return undefined;
        throw error;
      }
    },
  };
  return provider;
}
