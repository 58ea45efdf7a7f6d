import { Decimal } from 'decimal.js';
import { z } from 'zod';
import {
  type Currency,
  currencies,
  currencySchema,
  decimalAmountSchema,
  meteredPriceSchema,
  metricNameSchema,
} from '../billing/pricing-schema.js';

/**
 * The shapes of a plan as operators write it (POST and PATCH /v1/plans, `tollgate plans`), in the
 * snake_case of the HTTP API. One schema gives the request validation, the service's input type and
 * the OpenAPI document. Rules that tie fields together (an overage price needs an included quota and
 * a price per plan currency) are checked on the whole plan by `planConsistencyIssues`.
 */

export const planSlugSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    'use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit',
  );

export const planNameSchema = z.string().trim().min(1, 'must not be empty').max(200);
export const planDescriptionSchema = z.string().trim().max(2000);
export const billingIntervalSchema = z.enum(['month', 'year']);
export type BillingInterval = z.infer<typeof billingIntervalSchema>;

/** One base fee as written: an amount in major units, no finer than the currency's minor unit. */
export const planPriceInputSchema = z
  .strictObject({
    currency: currencySchema,
    interval: billingIntervalSchema,
    amount: decimalAmountSchema,
  })
  .superRefine((price, ctx) => {
    const exponent = currencies[price.currency];
    const decimals = price.amount.split('.')[1]?.length ?? 0;
    if (decimals > exponent) {
      ctx.addIssue({
        code: 'custom',
        path: ['amount'],
        message: `${price.currency} amounts have at most ${exponent} decimal places (got ${price.amount})`,
      });
    }
  });
export type PlanPriceInput = z.infer<typeof planPriceInputSchema>;

export const planPricesSchema = z
  .array(planPriceInputSchema)
  .max(Object.keys(currencies).length * 2)
  .superRefine((prices, ctx) => {
    const seen = new Set<string>();
    for (const [index, price] of prices.entries()) {
      const key = `${price.currency}:${price.interval}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: 'custom', path: [index], message: `${price.currency} ${price.interval} is given twice` });
      }
      seen.add(key);
    }
  });

/** A percentage below 100 with at most two decimals, as a number (15) or a string ("12.5"). */
export const annualDiscountSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const text = String(value);
  if (!/^(0|[1-9]\d?)(\.\d{1,2})?$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'a percentage from 0 to 99.99 with at most two decimals, like 15' });
    return z.NEVER;
  }
  return normalizePercent(text);
});

/** "15.00" (as PostgreSQL answers numeric(5,2)) or "15" -> "15"; "12.50" -> "12.5". */
export function normalizePercent(text: string): string {
  return new Decimal(text).toString();
}

/** Checks every key of a record against `keySchema`, so a bad key is named in the message. */
function keysMatch(keySchema: z.ZodType<string>, what: string) {
  return (record: Record<string, unknown>, ctx: z.RefinementCtx) => {
    for (const key of Object.keys(record)) {
      const parsed = keySchema.safeParse(key);
      if (!parsed.success) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${JSON.stringify(key)} is not a ${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
        });
      }
    }
  };
}

const metricKey = (what = 'metric name') => keysMatch(metricNameSchema, what);

const quantitySchema = z
  .number()
  .int('a whole number of units')
  .min(0, 'must not be negative')
  .max(Number.MAX_SAFE_INTEGER);

/**
 * Units included per billing period, per metric: `calls` (the quota the gateway enforces),
 * `bandwidth` and `storage` in bytes, or any custom metric. null: unlimited (no quota, never overage).
 */
export const planIncludedSchema = z
  .record(z.string(), quantitySchema.nullable())
  .superRefine(metricKey())
  .refine((record) => Object.keys(record).length <= 50, 'at most 50 metrics');

const currencyKey = keysMatch(
  z.string().refine((value) => currencySchema.safeParse(value).success, {
    message: `an unknown currency (this installation prices in ${currencySchema.options.join(', ')})`,
  }),
  'currency',
);

/** Prices of the units beyond the included ones: metric -> currency -> a metered price. */
export const planOverageSchema = z
  .record(z.string(), z.record(z.string(), meteredPriceSchema).superRefine(currencyKey))
  .superRefine(metricKey())
  .refine((record) => Object.keys(record).length <= 50, 'at most 50 metrics');
export type PlanOverage = Record<string, Partial<Record<Currency, z.infer<typeof meteredPriceSchema>>>>;

/** Feature flags the gateway passes to plugins and upstreams: true/false, a number or a short string. */
export const planEntitlementsSchema = z
  .record(z.string(), z.union([z.boolean(), z.number(), z.string().max(200)]))
  .superRefine(
    keysMatch(
      z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, _, . and -, starting with a letter'),
      'feature flag name',
    ),
  )
  .refine((record) => Object.keys(record).length <= 100, 'at most 100 entitlements');
export type PlanEntitlements = z.infer<typeof planEntitlementsSchema>;

const rateLimitSchema = z.number().int('a whole number of calls').min(0).max(2_147_483_647).nullable();

/** Per-team windows in calls; null: no limit for that window. */
export const planRateLimitsSchema = z.strictObject({
  per_second: rateLimitSchema.optional(),
  per_minute: rateLimitSchema.optional(),
  per_hour: rateLimitSchema.optional(),
  per_day: rateLimitSchema.optional(),
});

export const planCreateSchema = z.strictObject({
  slug: planSlugSchema,
  name: planNameSchema,
  description: planDescriptionSchema.optional(),
  trial_days: z.number().int().min(0).max(365).optional(),
  prices: planPricesSchema.optional(),
  annual_discount_percent: annualDiscountSchema.nullable().optional(),
  included: planIncludedSchema.optional(),
  overage_allowed: z.boolean().optional(),
  overage: planOverageSchema.optional(),
  rate_limits: planRateLimitsSchema.optional(),
  entitlements: planEntitlementsSchema.optional(),
});

/** Every field of create but the slug, each optional; maps and lists replace, rate_limits merges. */
export const planUpdateSchema = planCreateSchema.omit({ slug: true }).partial();

export type PlanCreateInput = z.input<typeof planCreateSchema>;
export type PlanUpdateInput = z.input<typeof planUpdateSchema>;
export type PlanUpdate = z.output<typeof planUpdateSchema>;

/** What a plan version holds, in the API's terms: the merge of a stored version and a change. */
export interface PlanTerms {
  name: string;
  description: string;
  trialDays: number;
  prices: PlanPriceInput[];
  annualDiscountPercent: string | null;
  /** metric -> units per period; `calls` null: unlimited. */
  included: Record<string, number | null>;
  overageAllowed: boolean;
  overage: PlanOverage;
  rateLimits: { perSecond: number | null; perMinute: number | null; perHour: number | null; perDay: number | null };
  entitlements: PlanEntitlements;
}

/**
 * Rules across fields: a metric with overage prices needs an included quota (a number; 0 for pay as
 * you go) and a price in every currency the plan has a base fee in, so every subscriber can be rated.
 */
export function planConsistencyIssues(terms: PlanTerms): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const planCurrencies = [...new Set(terms.prices.map((price) => price.currency))].sort();
  for (const [metric, byCurrency] of Object.entries(terms.overage)) {
    const included = terms.included[metric];
    if (included === undefined || included === null) {
      issues.push({
        path: `overage.${metric}`,
        message: `has a price but included.${metric} is not set (give it a number; 0 bills every unit)`,
      });
    }
    const priced = Object.keys(byCurrency);
    if (priced.length === 0)
      issues.push({ path: `overage.${metric}`, message: 'give a price in at least one currency' });
    for (const currency of planCurrencies) {
      if (!priced.includes(currency)) {
        issues.push({
          path: `overage.${metric}`,
          message: `has no ${currency} price (the plan is priced in ${planCurrencies.join(', ')})`,
        });
      }
    }
  }
  return issues;
}

const minorUnitDecimal = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });

/** "49.5" USD -> 4950 (minor units). The schema has checked the places. */
export function toMinorUnits(amount: string, currency: Currency): number {
  return new minorUnitDecimal(amount).times(10 ** currencies[currency]).toNumber();
}

/** 4950 USD -> "49.50". */
export function fromMinorUnits(amountMinor: number, currency: Currency): string {
  return new minorUnitDecimal(amountMinor).dividedBy(10 ** currencies[currency]).toFixed(currencies[currency]);
}

/**
 * The annual price derived from a monthly one (docs/plans.md, "Prices"): 12 x monthly x
 * (1 - percent/100), computed exactly and rounded half up once, to the minor unit.
 */
export function derivedAnnualMinor(monthlyMinor: number, discountPercent: string): number {
  return new minorUnitDecimal(monthlyMinor)
    .times(12)
    .times(new minorUnitDecimal(100).minus(discountPercent))
    .dividedBy(100)
    .toDecimalPlaces(0, Decimal.ROUND_HALF_UP)
    .toNumber();
}
