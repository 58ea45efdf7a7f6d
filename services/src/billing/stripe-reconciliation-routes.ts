import { z } from 'zod';
import type { StripeConfig } from '../config/config.js';
import { defineRoute } from '../http/route.js';
import { authenticate } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import type { Database } from '../storage/database.js';
import { reconcileWithStripe } from './stripe-reconciliation.js';

export interface ReconciliationRouteOptions {
  database: Database;
  signingKey: Buffer;
  /** Without a secret key there is nothing to reconcile against. */
  stripe: StripeConfig | undefined;
}

const differenceSchema = z.object({
  object: z.enum(['subscription', 'invoice', 'credit_note']),
  kind: z.string(),
  subscription_id: z.string().nullable(),
  team_id: z.string().nullable(),
  stripe_subscription_id: z.string().nullable(),
  invoice_id: z.string().nullable(),
  stripe_invoice_id: z.string().nullable(),
  ours: z.string().nullable(),
  stripe: z.string().nullable(),
});

/** Our subscriptions against Stripe's (docs/billing.md "Reconciliation"), for operators. */
export function reconciliationRoutes(options: ReconciliationRouteOptions) {
  const { database } = options;
  return [
    defineRoute({
      method: 'get',
      path: '/v1/billing/reconcile',
      operationId: 'reconcileBilling',
      summary: 'Every difference between our subscriptions and invoices and Stripe’s (billing:operate, operators)',
      description:
        'Read only. kind: missing_in_stripe, missing_at_home, status_mismatch, amount_mismatch, period_mismatch, cancel_at_period_end_mismatch. Without Stripe settings: configured false and no differences.',
      tags: ['billing'],
      responses: {
        200: {
          description: 'The differences (none when in sync)',
          schema: z.object({
            configured: z.boolean(),
            message: z.string(),
            compared: z.object({
              ours: z.number(),
              stripe: z.number(),
              ours_invoices: z.number(),
              stripe_invoices: z.number(),
            }),
            differences: z.array(differenceSchema),
          }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        await authorize(ctx, { database, caller, permission: 'billing:operate' });
        const report = await reconcileWithStripe(database, { stripe: options.stripe });
        ctx.body = {
          configured: report.configured,
          message: !report.configured
            ? 'no Stripe settings (STRIPE_SECRET_KEY): nothing to reconcile against'
            : report.differences.length === 0
              ? 'our subscriptions and Stripe’s agree'
              : `${report.differences.length} difference${report.differences.length === 1 ? '' : 's'} with Stripe`,
          compared: {
            ours: report.compared.ours,
            stripe: report.compared.stripe,
            ours_invoices: report.compared.oursInvoices,
            stripe_invoices: report.compared.stripeInvoices,
          },
          differences: report.differences.map((difference) => ({
            object: difference.object,
            kind: difference.kind,
            subscription_id: difference.subscriptionId,
            team_id: difference.teamId,
            stripe_subscription_id: difference.stripeSubscriptionId,
            invoice_id: difference.invoiceId,
            stripe_invoice_id: difference.stripeInvoiceId,
            ours: difference.ours,
            stripe: difference.stripe,
          })),
        };
      },
    }),
  ];
}
