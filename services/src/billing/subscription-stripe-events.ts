import type Stripe from 'stripe';
import { expireCreditPurchaseSession } from '../credits/credit-purchases.js';
import type { Logger } from '../logging/logger.js';
import type { TeamPolicyEvents } from '../plans/team-policy-events.js';
import type { Database } from '../storage/database.js';
import type { BillingProvider } from './billing-provider.js';
import { applyProviderInvoicePayment } from './invoices.js';
import type { StripeEventContext, StripeEventHandlers } from './stripe-webhooks.js';
import {
  applyProviderSubscriptionState,
  completeSubscriptionCheckout,
  expireSubscriptionCheckout,
  markSubscriptionPastDue,
  recordSubscriptionPayment,
  SubscriptionInvalidations,
} from './subscriptions.js';

export interface SubscriptionStripeEventOptions {
  /** The Stripe provider: handlers re-fetch the subscription through it. */
  provider: BillingProvider;
  /** TOLLGATE_BILLING_GRACE_DAYS */
  graceDays: number;
  teamPolicyEvents?: Pick<TeamPolicyEvents, 'publishInvalidation'> | undefined;
  /**
   * With it, invoice.paid and invoice.payment_failed of an invoice Tollgate pushed (period-close.ts)
   * also settle our invoice and record the payment or the failure on the team's subscription.
   */
  database?: Database;
}

/** The Stripe subscription id an event is about: the object itself, or the invoice's or session's. */
function subscriptionIdOf(event: Stripe.Event): string | undefined {
  const object = event.data.object as unknown as Record<string, unknown>;
  if (object.object === 'subscription') return object.id as string;
  const direct = object.subscription;
  if (typeof direct === 'string') return direct;
  if (direct && typeof direct === 'object' && typeof (direct as { id?: unknown }).id === 'string') {
    return (direct as { id: string }).id;
  }
  // Invoices since API 2025-03-31 name their subscription under parent.subscription_details.
  const parent = object.parent as { subscription_details?: { subscription?: unknown } } | null | undefined;
  const nested = parent?.subscription_details?.subscription;
  return typeof nested === 'string' ? nested : undefined;
}

/**
 * The subscription events (docs/stripe.md "Handled events"): checkout.session.completed,
 * customer.subscription.created/updated/deleted, invoice.paid and invoice.payment_failed. Every
 * handler re-fetches the subscription from Stripe and applies its current state, so a duplicate or
 * an event older than one already applied leaves the newest state; the store already processes an
 * event id once. Gateways are told after the event's transaction commits.
 */
export function registerSubscriptionStripeHandlers(
  handlers: StripeEventHandlers,
  options: SubscriptionStripeEventOptions,
): void {
  const withInvalidations = async (
    context: StripeEventContext,
    work: (invalidations: SubscriptionInvalidations) => Promise<void>,
  ) => {
    const invalidations = new SubscriptionInvalidations();
    await work(invalidations);
    if (invalidations.teams.size > 0) {
      context.afterCommit(() =>
        invalidations.publish({ teamPolicyEvents: options.teamPolicyEvents, logger: context.logger }),
      );
    }
  };

  const sync = async (event: Stripe.Event, context: StripeEventContext) => {
    const subscriptionId = subscriptionIdOf(event);
    if (!subscriptionId) return;
    const state = await options.provider.fetchSubscription(subscriptionId);
    if (!state) {
      context.logger.info({ subscription: subscriptionId }, 'Stripe does not know this subscription: nothing to apply');
      return;
    }
    await withInvalidations(context, async (invalidations) => {
      const applied = await applyProviderSubscriptionState(context.tx, {
        providerName: 'stripe',
        state,
        at: new Date(event.created * 1000),
        graceDays: options.graceDays,
        invalidations,
      });
      if (!applied) context.logger.debug({ subscription: subscriptionId }, 'not one of our subscriptions (yet)');
    });
  };

  handlers.register('checkout.session.completed', async (event, context) => {
    const session = event.data.object as unknown as { id: string; mode: string; subscription: string | null };
    if (session.mode !== 'subscription' || !session.subscription) return;
    const state = await options.provider.fetchSubscription(session.subscription);
    if (!state) throw new Error(`Stripe does not know subscription ${session.subscription} of ${session.id}`);
    await withInvalidations(context, async (invalidations) => {
      const created = await completeSubscriptionCheckout(context.tx, {
        providerName: 'stripe',
        sessionId: session.id,
        state,
        at: new Date(event.created * 1000),
        invalidations,
      });
      // Already completed (or not ours): the subscription may still have moved on since.
      if (!created) {
        await applyProviderSubscriptionState(context.tx, {
          providerName: 'stripe',
          state,
          at: new Date(event.created * 1000),
          graceDays: options.graceDays,
          invalidations,
        });
      }
    });
  });
  // An abandoned Checkout: its subscription checkout or its credit pack purchase ends `expired`. Stripe
  // never completes an expired session, so a row already completed (an event out of order) stays so.
  handlers.register('checkout.session.expired', async (event, context) => {
    const session = event.data.object as unknown as { id: string; mode: string; status?: string | null };
    if (session.status && session.status !== 'expired') return;
    const at = new Date(event.created * 1000);
    const expired =
      session.mode === 'subscription'
        ? await expireSubscriptionCheckout(context.tx, { providerName: 'stripe', sessionId: session.id, at })
        : await expireCreditPurchaseSession(context.tx, { sessionId: session.id, at });
    context.logger.info(
      { session: session.id, mode: session.mode, expired },
      expired ? 'Checkout expired' : 'Checkout already settled or not ours: nothing to expire',
    );
  });
  for (const type of [
    'customer.subscription.created',
    'customer.subscription.updated',
    'customer.subscription.deleted',
  ]) {
    handlers.register(type, sync);
  }
  for (const type of ['invoice.paid', 'invoice.payment_failed']) {
    handlers.register(type, async (event, context) => {
      await sync(event, context);
      await settleOurInvoice(event, context, type === 'invoice.paid');
    });
  }

  /** One of our pushed invoices (metadata.tollgate_invoice_id): paid or failed, on our side too. */
  const settleOurInvoice = async (event: Stripe.Event, context: StripeEventContext, paid: boolean) => {
    const invoice = event.data.object as unknown as { id: string; metadata?: Record<string, string> | null };
    const database = options.database;
    if (!database || !invoice.metadata?.tollgate_invoice_id) return;
    const at = new Date(event.created * 1000);
    const settled = await applyProviderInvoicePayment(context.tx, {
      provider: 'stripe',
      providerInvoiceId: invoice.id,
      paid,
      at,
    });
    if (!settled) return;
    const service = {
      database,
      provider: options.provider,
      graceDays: options.graceDays,
      logger: context.logger as Logger,
    };
    const teamPolicyEvents = options.teamPolicyEvents;
    context.afterCommit(async () => {
      const withEvents = teamPolicyEvents ? { ...service, teamPolicyEvents } : service;
      const live = await database.query("SELECT 1 FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'", [
        settled.teamId,
      ]);
      if (live.rows.length === 0) return;
      if (paid) await recordSubscriptionPayment(withEvents, { teamId: settled.teamId, at });
      else await markSubscriptionPastDue(withEvents, { teamId: settled.teamId, at });
    });
  };
}
