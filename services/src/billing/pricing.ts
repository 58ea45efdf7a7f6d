import type { Decimal } from 'decimal.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { fromMinorUnits, MAX_BIGINT64, MoneyDecimal, roundMinorUnits, scaledDecimal, toMinorUnits } from './money.js';
import { type Currency, type MeteredPrice, meteredPriceSchema } from './pricing-schema.js';

/**
 * The rating engine: usage and prices in, amounts out (docs/billing.md). Pure functions, no storage.
 * Every amount that leaves here rounded was rounded once, by `toMinorUnits`.
 */

/** Digits after the point a price may have (`decimalAmountSchema`): prices are rated in 10^-12 steps. */
const PRICE_DECIMALS = 12;

function invalid(path: string, message: string): TollgateError {
  return new TollgateError('validation_failed', `${path}: ${message}`, {
    details: { issues: [{ path, message }] },
  });
}

/** A count of units or minor units: a bigint from 0 to the largest PostgreSQL `bigint`. */
function checkCount(value: bigint, path: string, what = 'a count'): void {
  if (typeof value !== 'bigint') throw invalid(path, `${what} must be a bigint, not ${typeof value}`);
  if (value < 0n) throw invalid(path, `${what} cannot be negative (got ${value})`);
  if (value > MAX_BIGINT64) throw invalid(path, `${what} cannot exceed ${MAX_BIGINT64} (got ${value})`);
}

/** A schema-valid price string in 10^-12 major units ("0.0005" -> 500_000_000n). */
function scaledPrice(text: string): bigint {
  const scaled = scaledDecimal(text, PRICE_DECIMALS);
  // Unreachable after meteredPriceSchema has accepted the price; kept so a change there cannot make
  // this silently rate at zero.
  if (scaled === undefined) throw invalid('price', `${JSON.stringify(text)} is not a decimal amount`);
  return scaled;
}

/**
 * The amount, in major units of the price's currency and not yet rounded, that `units` billable
 * units cost under `price`:
 * - `per_unit`: units × unit_price;
 * - `graduated`: each unit at the unit_price of the tier it falls in, plus the flat_fee of every tier
 *   at least one unit reaches;
 * - `volume`: every unit at the unit_price of the tier the total falls in, plus that tier's flat_fee;
 * - `package`: package_price per started block of package_size units.
 *
 * Tier bounds (`up_to`) count the units passed here, which for a plan are the units beyond what it
 * includes (`overageUnits`): with 100,000 calls included, `up_to: 1000000` ends at call 1,100,000.
 * Zero units cost nothing, flat fees included. Exact for any count: the arithmetic is done on integers
 * in 10^-12 steps (the finest a price can be) and only then turned into a decimal.
 */
export function rateUnits(price: MeteredPrice, units: bigint): Decimal {
  checkCount(units, 'units');
  const parsed = meteredPriceSchema.safeParse(price);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = ['price', ...(issue?.path ?? []).map(String)].join('.');
    throw invalid(path, issue?.message ?? 'not a valid price');
  }
  const valid = parsed.data;
  /** 10^-12 major units */
  let total = 0n;
  switch (valid.model) {
    case 'per_unit':
      total = units * scaledPrice(valid.unit_price);
      break;
    case 'graduated': {
      let below = 0n;
      for (const tier of valid.tiers) {
        if (units <= below) break;
        const top = tier.up_to === null ? units : BigInt(tier.up_to);
        const inTier = (units < top ? units : top) - below;
        total += inTier * scaledPrice(tier.unit_price) + scaledPrice(tier.flat_fee ?? '0');
        below = top;
      }
      break;
    }
    case 'volume': {
      if (units === 0n) break;
      const tier = valid.tiers.find((candidate) => candidate.up_to === null || units <= BigInt(candidate.up_to));
      // The schema makes the last tier unbounded, so a tier is always found.
      if (tier) total = units * scaledPrice(tier.unit_price) + scaledPrice(tier.flat_fee ?? '0');
      break;
    }
    case 'package': {
      const size = BigInt(valid.package_size);
      const blocks = (units + size - 1n) / size;
      total = blocks * scaledPrice(valid.package_price);
      break;
    }
  }
  return new MoneyDecimal(`${total}e-${PRICE_DECIMALS}`);
}

/**
 * Units beyond what a plan includes: `used - included`, never below 0. `included` null means the plan
 * includes everything (no quota), so nothing is overage.
 */
export function overageUnits(used: bigint, included: bigint | null): bigint {
  checkCount(used, 'used');
  if (included === null) return 0n;
  checkCount(included, 'included');
  return used > included ? used - included : 0n;
}

/**
 * One invoice line for a metered price: the overage units and their amount in minor units, rounded
 * once for the whole line (never per unit or per tier).
 */
export function rateLine(input: { price: MeteredPrice; used: bigint; included: bigint | null; currency: Currency }): {
  units: bigint;
  amountMinor: bigint;
} {
  const units = overageUnits(input.used, input.included);
  return { units, amountMinor: toMinorUnits(rateUnits(input.price, units), input.currency) };
}

/** A percentage from 0 to 100 with at most 12 decimals ("16.67"), as a decimal. */
function percent(text: string, path: string): Decimal {
  const scaled = scaledDecimal(text, PRICE_DECIMALS);
  const value = scaled === undefined ? undefined : new MoneyDecimal(`${scaled}e-${PRICE_DECIMALS}`);
  if (value === undefined || value.greaterThan(100)) {
    throw invalid(path, `${JSON.stringify(text)} is not a percentage from 0 to 100 such as "15" or "16.67"`);
  }
  return value;
}

/**
 * The price of a year paid at once: 12 × the monthly price × (1 − discount / 100), rounded once
 * (monthly 9.99 at 15% off is 12 × 9.99 × 0.85 = 101.898, so 101.90; not 12 × 8.49).
 * `discountPercent` is a decimal string from "0" to "100".
 */
export function annualPriceMinor(monthlyMinor: bigint, discountPercent: string, currency: Currency): bigint {
  checkCount(monthlyMinor, 'monthly', 'an amount');
  const discount = percent(discountPercent, 'discount_percent');
  // At most 19 + 2 + 15 significant digits, inside MoneyDecimal's 40: the product is exact.
  const annual = fromMinorUnits(monthlyMinor, currency)
    .times(12)
    .times(new MoneyDecimal(100).minus(discount))
    .dividedBy(100);
  return toMinorUnits(annual, currency);
}

/** Milliseconds as a bigint: a non-negative whole number, given as a bigint or a safe integer. */
function milliseconds(value: bigint | number, path: string): bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw invalid(path, `${value} is not a whole number of milliseconds`);
    value = BigInt(value);
  }
  checkCount(value, path, 'a duration');
  return value;
}

/**
 * The part of `fullMinor` (a price for a whole period) that `remainingMs` of a `periodMs`-long period
 * is worth: fullMinor × remaining / period, rounded once, half up. On an upgrade, the unused part of
 * the old plan is credited and the rest of the period on the new plan charged, each prorated here.
 */
export function prorateMinor(fullMinor: bigint, remainingMs: bigint | number, periodMs: bigint | number): bigint {
  checkCount(fullMinor, 'full', 'an amount');
  const remaining = milliseconds(remainingMs, 'remaining_ms');
  const period = milliseconds(periodMs, 'period_ms');
  if (period === 0n) throw invalid('period_ms', 'a period must be longer than 0 ms');
  if (remaining > period)
    throw invalid('remaining_ms', `${remaining} ms remaining is more than the ${period} ms period`);
  // The share is at most fullMinor (19 digits), which leaves 21 decimals of MoneyDecimal's 40. With a
  // divisor below 2^63 the exact share is either on a half or more than 10^-20 away from one, so
  // the division's rounding to 40 digits can never move it onto or across a half: the one rounding
  // that counts is roundMinorUnits.
  const share = new MoneyDecimal(fullMinor.toString()).times(remaining.toString()).dividedBy(period.toString());
  return roundMinorUnits(share);
}

/**
 * Credits a team holds, applied to an invoice before anything is charged: as much of the balance as
 * the invoice's lines add up to, never more than the balance and never below zero (an invoice that
 * adds up to nothing or less takes no credit).
 */
export function creditsApplied(
  lineAmountsMinor: bigint[],
  balanceMinor: bigint,
): { appliedMinor: bigint; remainingBalanceMinor: bigint } {
  checkCount(balanceMinor, 'balance', 'a credit balance');
  let due = 0n;
  for (const [index, line] of lineAmountsMinor.entries()) {
    if (typeof line !== 'bigint') throw invalid(`lines.${index}`, `an amount must be a bigint, not ${typeof line}`);
    due += line;
  }
  const applied = due <= 0n ? 0n : due < balanceMinor ? due : balanceMinor;
  return { appliedMinor: applied, remainingBalanceMinor: balanceMinor - applied };
}
