import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import type { Database } from '../storage/database.js';
import { formatMoney } from './money.js';
import type { Currency } from './pricing-schema.js';
import { type DayMetrics, type Ratio, revenueMetrics } from './revenue-metrics.js';

export interface RevenueMetricsRouteOptions {
  database: Database;
  signingKey: Buffer;
  /** TOLLGATE_BASE_CURRENCY. */
  baseCurrency: Currency;
}

const ratioSchema = z
  .object({ numerator: z.number(), denominator: z.number(), rate: z.string().nullable() })
  .nullable();

const daySchema = z.object({
  day: z.string(),
  recorded: z.boolean(),
  mrr_minor: z.number().nullable(),
  mrr: z.string().nullable(),
  arr_minor: z.number().nullable(),
  arr: z.string().nullable(),
  arpu_minor: z.number().nullable(),
  arpu: z.string().nullable(),
  subscriptions: z
    .object({ trialing: z.number(), active: z.number(), past_due: z.number(), unpaid: z.number() })
    .nullable(),
  paying_teams: z.number().nullable(),
  trial_conversion: ratioSchema,
  logo_churn: ratioSchema,
  revenue_churn: ratioSchema,
});

const ratioBody = (value: Ratio | null) => value && { ...value };

function dayBody(day: DayMetrics, currency: Currency): z.infer<typeof daySchema> {
  const money = (minor: bigint | null) => (minor === null ? null : formatMoney(minor, currency));
  const minor = (value: bigint | null) => (value === null ? null : Number(value));
  return {
    day: day.day,
    recorded: day.recorded,
    mrr_minor: minor(day.mrrMinor),
    mrr: money(day.mrrMinor),
    arr_minor: minor(day.arrMinor),
    arr: money(day.arrMinor),
    arpu_minor: minor(day.arpuMinor),
    arpu: money(day.arpuMinor),
    subscriptions: day.subscriptions && {
      trialing: day.subscriptions.trialing,
      active: day.subscriptions.active,
      past_due: day.subscriptions.pastDue,
      unpaid: day.subscriptions.unpaid,
    },
    paying_teams: day.payingTeams,
    trial_conversion: ratioBody(day.trialConversion),
    logo_churn: ratioBody(day.logoChurn),
    revenue_churn: ratioBody(day.revenueChurn),
  };
}

/** Revenue metrics per day (docs/billing.md "Revenue metrics"), for operators. */
export function revenueMetricsRoutes(options: RevenueMetricsRouteOptions) {
  const { database, baseCurrency } = options;
  return [
    defineRoute({
      method: 'get',
      path: '/v1/billing/metrics',
      operationId: 'revenueMetrics',
      summary: 'MRR, ARR, subscriptions, trial conversion, churn and ARPU per day (billing:operate, operators)',
      description:
        'from and to are UTC days (YYYY-MM-DD); to defaults to today, from to 29 days before to; at most 366 days. Amounts are minor units of the base currency.',
      tags: ['billing'],
      responses: {
        200: {
          description: 'Figures per day',
          schema: z.object({ base_currency: z.string(), from: z.string(), to: z.string(), days: z.array(daySchema) }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        await authorize(ctx, { database, caller, permission: 'billing:operate' });
        const query = (name: string): string | undefined => {
          const value = ctx.query[name];
          if (Array.isArray(value)) throw new TollgateError('validation_failed', `${name}: give it once`);
          return value;
        };
        const metrics = await revenueMetrics(database, { from: query('from'), to: query('to'), baseCurrency });
        ctx.body = {
          base_currency: metrics.baseCurrency,
          from: metrics.from,
          to: metrics.to,
          days: metrics.days.map((day) => dayBody(day, metrics.baseCurrency)),
        };
      },
    }),
  ];
}
