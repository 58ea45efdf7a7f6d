import { z } from 'zod';

/**
 * The shapes prices are written in, shared by the plan catalog (which stores them) and the rating
 * engine (pricing.ts, which applies them). Amounts are decimal strings in a currency's major units
 * ("49", "0.0005"), never floats: a unit price can be finer than a cent, and only an invoice line is
 * rounded (docs/billing.md, "Rounding").
 */

/** Currencies plans can be priced in, and their minor units (ISO 4217 exponents). */
export const currencies = { USD: 2, EUR: 2, GBP: 2 } as const;
export type Currency = keyof typeof currencies;
export const currencySchema = z.enum(['USD', 'EUR', 'GBP']);

/** A non-negative decimal amount in major units: up to 12 digits before the point and 12 after. */
export const decimalAmountSchema = z
  .string()
  .regex(/^(0|[1-9]\d{0,11})(\.\d{1,12})?$/, 'a decimal amount such as "49", "12.50" or "0.0005"');

/** What is metered: calls, bandwidth (bytes), storage (bytes held), or a custom metric an operator names. */
export const metricNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'lower-case letters, digits and underscores, starting with a letter');

/**
 * One tier: units up to and including `up_to` (null: no upper bound, the last tier only) cost
 * `unit_price` each, plus `flat_fee` once when any unit falls in the tier.
 */
export const tierSchema = z.object({
  up_to: z.number().int().positive().nullable(),
  unit_price: decimalAmountSchema,
  flat_fee: decimalAmountSchema.optional(),
});
export type Tier = z.infer<typeof tierSchema>;

const tiersSchema = z
  .array(tierSchema)
  .min(1)
  .max(20)
  .superRefine((tiers, ctx) => {
    tiers.forEach((tier, index) => {
      const last = index === tiers.length - 1;
      if (last && tier.up_to !== null) {
        ctx.addIssue({
          code: 'custom',
          message: 'the last tier has up_to null (no upper bound)',
          path: [index, 'up_to'],
        });
      }
      if (!last && tier.up_to === null) {
        ctx.addIssue({ code: 'custom', message: 'only the last tier may have up_to null', path: [index, 'up_to'] });
      }
      const previous = tiers[index - 1]?.up_to;
      if (tier.up_to !== null && typeof previous === 'number' && tier.up_to <= previous) {
        ctx.addIssue({
          code: 'custom',
          message: 'tiers go up: each up_to above the one before',
          path: [index, 'up_to'],
        });
      }
    });
  });

/**
 * How units beyond what a plan includes are priced (docs/billing.md, "Pricing models"):
 * - `per_unit`: every unit at `unit_price`;
 * - `graduated`: each unit at the price of the tier it falls in (the first 1,000,000 at one price,
 *   the rest at another);
 * - `volume`: every unit at the price of the tier the total falls in;
 * - `package`: per started block of `package_size` units, `package_price` each.
 */
export const meteredPriceSchema = z.discriminatedUnion('model', [
  z.object({ model: z.literal('per_unit'), unit_price: decimalAmountSchema }),
  z.object({ model: z.literal('graduated'), tiers: tiersSchema }),
  z.object({ model: z.literal('volume'), tiers: tiersSchema }),
  z.object({
    model: z.literal('package'),
    package_size: z.number().int().positive(),
    package_price: decimalAmountSchema,
  }),
]);
export type MeteredPrice = z.infer<typeof meteredPriceSchema>;
