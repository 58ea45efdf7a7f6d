import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import type { Database } from '../storage/database.js';
import { type ExchangeRate, listExchangeRates, parseCurrency, setExchangeRate } from './exchange-rates.js';
import type { Currency } from './pricing-schema.js';

export interface ExchangeRateRouteOptions {
  database: Database;
  signingKey: Buffer;
  /** TOLLGATE_BASE_CURRENCY. */
  baseCurrency: Currency;
}

const rateSchema = z.object({
  currency: z.string(),
  base_currency: z.string(),
  rate: z.string().describe('1 unit of currency is worth rate units of base_currency; exact'),
  effective_at: z.string(),
  created_at: z.string(),
});

const rateBody = (rate: ExchangeRate): z.infer<typeof rateSchema> => ({
  currency: rate.currency,
  base_currency: rate.baseCurrency,
  rate: rate.rate,
  effective_at: rate.effectiveAt.toISOString(),
  created_at: rate.createdAt.toISOString(),
});

const params = (ctx: Context) => (ctx as unknown as { params: Record<string, string | undefined> }).params;

/** The operator's exchange rates for reporting (docs/billing.md, "Exchange rates"). */
export function exchangeRateRoutes(options: ExchangeRateRouteOptions) {
  const { database, baseCurrency } = options;
  return [
    defineRoute({
      method: 'get',
      path: '/v1/billing/rates',
      operationId: 'listExchangeRates',
      summary: 'Exchange rates to the base currency: the ones in force, or ?history=true for every change (signed in)',
      tags: ['billing'],
      responses: {
        200: {
          description: 'Rates',
          schema: z.object({ base_currency: z.string(), rates: z.array(rateSchema) }),
        },
      },
      handler: async (ctx) => {
        await authenticate(ctx, options);
        const history = ctx.query.history;
        if (history !== undefined && history !== 'true' && history !== 'false') {
          throw new TollgateError('validation_failed', 'history: use true or false');
        }
        const rates = await listExchangeRates(database, { baseCurrency, history: history === 'true' });
        ctx.body = { base_currency: baseCurrency, rates: rates.map(rateBody) };
      },
    }),
    defineRoute({
      method: 'put',
      path: '/v1/billing/rates/:currency',
      operationId: 'setExchangeRate',
      summary: 'Set the rate of a currency to the base currency (billing:operate, operators)',
      description:
        'rate: a plain decimal above 0 with at most 12 decimals, e.g. "0.92" (1 unit of the currency is worth 0.92 of the base currency). A new rate is a new row: earlier ones stay for figures of earlier times. effective_at (ISO 8601) defaults to now.',
      tags: ['billing'],
      body: z.strictObject({
        rate: z.string().describe('e.g. "0.92"; a string, so it stays exact'),
        effective_at: z.iso.datetime({ offset: true }).optional(),
      }),
      responses: { 200: { description: 'The rate recorded', schema: rateSchema } },
      handler: async (ctx, { body }) => {
        const caller = await authenticate(ctx, options);
        await authorize(ctx, { database, caller, permission: 'billing:operate' });
        const currency = parseCurrency(params(ctx).currency ?? '');
        const rate = await database.transaction(async (tx) => {
          const recorded = await setExchangeRate(tx, {
            currency,
            rate: body.rate,
            baseCurrency,
            ...(body.effective_at ? { effectiveAt: new Date(body.effective_at) } : {}),
            userId: caller.user.id,
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'billing.exchange_rate_set',
              outcome: 'success',
              targetType: 'exchange_rate',
              targetId: `${recorded.currency}/${recorded.baseCurrency}`,
              details: { rate: recorded.rate, effective_at: recorded.effectiveAt.toISOString() },
            }),
          );
          return recorded;
        });
        ctx.body = rateBody(rate);
      },
    }),
  ];
}
