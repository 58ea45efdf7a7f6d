import type { Context } from 'koa';
import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate, type Caller, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import { teamAccess } from '../teams/team-routes.js';
import { renderInvoicePdf } from './invoice-pdf.js';
import {
  createCreditNote,
  getInvoice,
  invoiceBody,
  listInvoices,
  markInvoicePaid,
  pushCreditNote,
  voidInvoice,
} from './invoices.js';
import { closeBillingPeriod } from './period-close.js';
import { decimalAmountSchema } from './pricing-schema.js';
import type { SubscriptionServiceOptions } from './subscriptions.js';

export interface InvoiceRouteOptions extends SubscriptionServiceOptions {
  signingKey: Buffer;
}

const moneySchema = z.object({ minor: z.string().describe('minor units (cents)'), formatted: z.string() });
const invoiceSchema = z.object({
  id: z.string(),
  number: z.string(),
  kind: z.enum(['invoice', 'credit_note']),
  corrects_invoice_id: z.string().nullable(),
  team_id: z.string(),
  subscription_id: z.string(),
  period_start: z.string(),
  period_end: z.string(),
  currency: z.string(),
  status: z.enum(['draft', 'open', 'paid', 'void']),
  subtotal: moneySchema,
  credits_applied: moneySchema,
  tax: moneySchema.describe('always 0 for now: no tax engine'),
  total: moneySchema,
  provider: z.enum(['manual', 'stripe']),
  provider_invoice_id: z.string().nullable(),
  provider_credit_note_id: z.string().nullable().describe("a credit note pushed to Stripe: Stripe's cn_... id"),
  push_state: z
    .enum(['none', 'pending', 'invoice_created', 'items_pushed', 'finalized'])
    .describe('where the push to the provider stands; none: not pushed (manual)'),
  finalized_at: z.string().nullable(),
  paid_at: z.string().nullable(),
  due_at: z.string().nullable().describe('when an open invoice must be paid; past it the subscription is past due'),
  voided_at: z.string().nullable(),
  void_reason: z.string().nullable(),
  lines: z.array(
    z.object({
      id: z.string(),
      kind: z.enum(['base_fee', 'overage', 'proration', 'credit']),
      metric: z.string().nullable(),
      quantity: z.string(),
      unit_price: z.string(),
      amount: moneySchema,
      description: z.string(),
    }),
  ),
});

const creditNoteBody = z.strictObject({
  amount: decimalAmountSchema.describe('in major units of the invoice currency, e.g. "10.00"'),
  reason: z.string().min(1).max(500),
});
const voidBody = z.strictObject({
  reason: z.string().min(1).max(500).optional().describe('why, for the invoice, the audit log and the webhook'),
});
const closePeriodBody = z.strictObject({
  now: z.iso
    .datetime({ offset: true })
    .optional()
    .describe('the instant to close at (tests and back-fills); now by default'),
});

function actor(ctx: Context, caller: Caller, action: string) {
  const { actorUserId, actorLabel, ip, userAgent, requestId } = callerAudit(ctx, caller, {
    action,
    outcome: 'success',
  });
  return {
    actorLabel,
    ...(actorUserId === undefined ? {} : { actorUserId }),
    ...(ip === undefined ? {} : { ip }),
    ...(userAgent === undefined ? {} : { userAgent }),
    ...(requestId === undefined ? {} : { requestId }),
  };
}

const param = (ctx: Context, name: string): string => String((ctx.params as Record<string, string>)[name] ?? '');

/** `/v1/teams/:team/invoices...` (billing:read) and the operator actions (billing:operate). */
export function invoiceRoutes(options: InvoiceRouteOptions) {
  const operator = async (ctx: Context) => {
    const caller = await authenticate(ctx, options);
    await authorize(ctx, { database: options.database, caller, permission: 'billing:operate' });
    return caller;
  };
  return [
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/invoices',
      operationId: 'listInvoices',
      summary: "The team's invoices and credit notes, newest first (billing:read)",
      tags: ['billing'],
      responses: { 200: { description: 'Invoices', schema: z.object({ invoices: z.array(invoiceSchema) }) } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'billing:read');
        ctx.body = { invoices: (await listInvoices(options.database, team.id)).map(invoiceBody) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/invoices/:id',
      operationId: 'getInvoice',
      summary: 'One invoice with its lines (billing:read)',
      tags: ['billing'],
      responses: {
        200: { description: 'The invoice', schema: invoiceSchema },
        404: { description: 'not_found' },
      },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'billing:read');
        ctx.body = invoiceBody(await getInvoice(options.database, param(ctx, 'id'), team.id));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/invoices/:id/pdf',
      operationId: 'getInvoicePdf',
      summary: 'One invoice as a PDF, rendered from our invoice (billing:read)',
      tags: ['billing'],
      responses: { 200: { description: 'application/pdf' }, 404: { description: 'not_found' } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'billing:read');
        const invoice = await getInvoice(options.database, param(ctx, 'id'), team.id);
        ctx.type = 'application/pdf';
        ctx.set('content-disposition', `inline; filename="${invoice.number}.pdf"`);
        ctx.body = renderInvoicePdf(invoice);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/invoices/:id/mark-paid',
      operationId: 'markInvoicePaid',
      summary: 'Mark an open invoice paid: the manual provider (billing:operate, operators)',
      description:
        'Records the payment and sends invoice.paid; a past_due or unpaid subscription is active again once no other invoice of the team is overdue. Paying a paid invoice answers it unchanged.',
      tags: ['billing'],
      responses: {
        200: { description: 'The paid invoice', schema: invoiceSchema },
        404: { description: 'not_found' },
        409: { description: 'invoice_not_payable: void, draft, or a credit note' },
      },
      handler: async (ctx) => {
        const caller = await operator(ctx);
        const { invoice } = await markInvoicePaid(options, {
          invoiceId: param(ctx, 'id'),
          actor: actor(ctx, caller, 'invoice.paid'),
        });
        ctx.body = invoiceBody(invoice);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/invoices/:id/void',
      operationId: 'voidInvoice',
      summary: 'Void an open invoice (billing:operate, operators)',
      description:
        'Nothing is owed for it any more: voided at Stripe too when it was pushed there, the credits it consumed are given back, invoice.voided is sent, and a past_due subscription with no other overdue invoice is active again. Voiding a void invoice answers it unchanged. A paid invoice takes a credit note instead.',
      tags: ['billing'],
      body: voidBody,
      responses: {
        200: { description: 'The void invoice', schema: invoiceSchema },
        400: { description: 'validation_failed: a reason that is empty or over 500 characters' },
        404: { description: 'not_found' },
        409: {
          description:
            'invoice_not_voidable: paid (issue a credit note), a credit note, with credit notes, or still being pushed',
        },
        502: { description: 'provider_unavailable: Stripe could not be reached; nothing changed' },
      },
      handler: async (ctx, { body }) => {
        const caller = await operator(ctx);
        const { invoice } = await voidInvoice(options, {
          invoiceId: param(ctx, 'id'),
          reason: body.reason,
          actor: actor(ctx, caller, 'invoice.voided'),
        });
        ctx.body = invoiceBody(invoice);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/invoices/:id/credit-notes',
      operationId: 'createCreditNote',
      summary: 'Correct a finalized invoice with a credit note (billing:operate, operators)',
      tags: ['billing'],
      body: creditNoteBody,
      responses: {
        201: { description: 'The credit note', schema: invoiceSchema },
        400: { description: 'validation_failed: an amount above what is left to credit' },
        404: { description: 'not_found' },
      },
      handler: async (ctx, { body }) => {
        const caller = await operator(ctx);
        const note = await createCreditNote(options.database, {
          invoiceId: param(ctx, 'id'),
          amount: body.amount,
          reason: body.reason,
          actor: actor(ctx, caller, 'invoice.credit_note'),
        });
        // Stored first; then pushed to Stripe when the invoice was. A failed push stays pending
        // (push_state) and the period close retries it with the same idempotency key.
        let shown = note;
        if (note.pushState === 'pending') {
          try {
            if (await pushCreditNote(options.database, options.provider, note.id)) {
              shown = await getInvoice(options.database, note.id);
            }
          } catch (error) {
            options.logger.warn(
              { err: error, creditNoteId: note.id },
              'credit note push failed; the period close retries it',
            );
          }
        }
        ctx.status = 201;
        ctx.body = invoiceBody(shown);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/billing/close-period',
      operationId: 'closeBillingPeriod',
      summary: 'Close every billing period that has ended (billing:operate, operators)',
      description: 'What the period-close job does every minute; idempotent.',
      tags: ['billing'],
      body: closePeriodBody,
      responses: {
        200: {
          description: 'What the run did',
          schema: z.object({ invoiced: z.number(), trials: z.number(), pushed: z.number(), push_failed: z.number() }),
        },
      },
      handler: async (ctx, { body }) => {
        await operator(ctx);
        const now = body.now ? new Date(body.now) : (options.now ?? (() => new Date()))();
        if (Number.isNaN(now.getTime())) throw new TollgateError('validation_failed', 'now: not a date');
        const report = await closeBillingPeriod(options.database, {
          now,
          provider: options.provider,
          graceDays: options.graceDays,
          paymentTermsDays: options.paymentTermsDays,
          logger: options.logger,
          teamPolicyEvents: options.teamPolicyEvents,
        });
        ctx.body = {
          invoiced: report.invoiced,
          trials: report.trials,
          pushed: report.pushed,
          push_failed: report.pushFailed,
        };
      },
    }),
  ];
}
