import { Decimal } from 'decimal.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { type Currency, currencies } from './pricing-schema.js';

/**
 * Exact amounts for billing (docs/billing.md, "Amounts and currencies"). Amounts that are stored or
 * invoiced are `bigint` minor units (cents); amounts on their way to an invoice line are decimal.js
 * values in major units. `toMinorUnits` (with `roundMinorUnits`, the same rule for a fraction of a
 * minor unit) is the only place a decimal becomes minor units, and so the only rounding of money.
 */

/**
 * decimal.js configured for money, as a clone so the library's global defaults (which other code may
 * rely on) stay untouched. 40 significant digits hold any 64-bit amount times the factors we multiply
 * amounts by (decision 0012); `rounding` only applies at that limit, never to a currency's minor
 * unit, which `toMinorUnits` rounds with its mode spelled out. Metered usage is rated on integers
 * instead (pricing.ts, `rateUnits`), because a 12-decimal price times a 64-bit count can need 43.
 */
export const MoneyDecimal = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });

/** The largest amount or count we store: a PostgreSQL `bigint`. */
export const MAX_BIGINT64 = 9_223_372_036_854_775_807n;

/** Digits after the point in a currency's minor unit (2 for USD, EUR and GBP: cents, pence). */
export function minorUnitsOf(currency: Currency): number {
  if (!Object.hasOwn(currencies, currency)) {
    throw new TollgateError('validation_failed', `currency: ${String(currency)} is not a supported currency`, {
      hint: `use one of ${Object.keys(currencies).join(', ')}`,
      details: { issues: [{ path: 'currency', message: 'not a supported currency' }] },
    });
  }
  return currencies[currency];
}

/**
 * THE rounding rule: an amount in major units becomes whole minor units, half up (a half is rounded
 * away from zero, so 0.005 USD is 1 cent and -0.005 USD is -1 cent). Everything that rounds money goes
 * through here or `roundMinorUnits` (the same rule), and a caller rounds once per invoice line
 * (docs/billing.md, "Rounding").
 */
export function toMinorUnits(amount: Decimal, currency: Currency): bigint {
  return roundHalfUp(amount, minorUnitsOf(currency));
}

/**
 * The same rule for an amount already counted in minor units but with a fraction (a prorated share
 * of a price, 1633.33 cents): half up to a whole minor unit.
 */
export function roundMinorUnits(amountMinor: Decimal): bigint {
  return roundHalfUp(amountMinor, 0);
}

/** `amount` rounded half up (away from zero) to `digits` decimals, then scaled by 10^digits. */
function roundHalfUp(amount: Decimal, digits: number): bigint {
  if (!Decimal.isDecimal(amount) || !amount.isFinite()) {
    throw new TollgateError('validation_failed', `amount: ${String(amount)} is not a finite decimal amount`);
  }
  // toDecimalPlaces and toFixed are exact at any size (decimal.js applies `precision` to neither), so
  // this is the only rounding that happens here.
  const rounded = amount.toDecimalPlaces(digits, Decimal.ROUND_HALF_UP).toFixed(digits);
  return BigInt(rounded.replace('.', ''));
}

/** Whole minor units as an exact decimal in major units: 2500n USD is 25. */
export function fromMinorUnits(minor: bigint, currency: Currency): Decimal {
  const digits = minorUnitsOf(currency);
  if (typeof minor !== 'bigint') {
    throw new TollgateError('validation_failed', `amount: ${String(minor)} is not a whole number of minor units`);
  }
  // An exponent in the string keeps this exact: no division, so no rounding to `precision`.
  return new MoneyDecimal(`${minor}e${-digits}`);
}

const plainDecimal = /^(0|[1-9]\d*)(?:\.(\d+))?$/;

/**
 * A non-negative plain decimal string ("12.5", "0.0005") as an integer scaled by 10^decimals
 * ("12.5", 2 -> 1250n), exactly; `undefined` for anything else (signs, exponents, spaces, a bare
 * point, leading zeros) or for more digits after the point than `decimals`.
 */
export function scaledDecimal(text: string, decimals: number): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  const match = plainDecimal.exec(text);
  if (!match) return undefined;
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  if (fraction.length > decimals) return undefined;
  return BigInt(whole + fraction.padEnd(decimals, '0'));
}

/**
 * A price or amount typed by a person or sent in a request, in major units ("25", "1234.56"), as
 * minor units. Exact: refuses negatives, anything that is not a plain decimal, and more decimals
 * than the currency has ("0.001" USD), rather than round someone's input.
 */
export function parseAmount(text: string, currency: Currency): bigint {
  const digits = minorUnitsOf(currency);
  const minor = scaledDecimal(text, digits);
  if (minor !== undefined) return minor;
  const shown = typeof text === 'string' ? JSON.stringify(text) : String(text);
  const problem =
    typeof text === 'string' && text.trim().startsWith('-')
      ? 'must not be negative'
      : typeof text === 'string' && plainDecimal.test(text)
        ? `has more than ${digits} decimals, the smallest unit of ${currency}`
        : 'is not an amount such as "25" or "12.50"';
  throw new TollgateError('validation_failed', `amount: ${shown} ${problem}`, {
    hint: `write the amount in ${currency} with at most ${digits} decimals, e.g. "25" or "12.50"`,
    details: { issues: [{ path: 'amount', message: problem }] },
  });
}

const symbols: Record<Currency, string> = { USD: '$', EUR: '€', GBP: '£' };

/**
 * Minor units as people read them on an invoice: "$25.00", "€1,234.56", "£0.05", "-$3.00". Written
 * out by hand rather than with Intl so the text is the same on every Node build and ICU version.
 */
export function formatMoney(minor: bigint, currency: Currency): string {
  const digits = minorUnitsOf(currency);
  if (typeof minor !== 'bigint') {
    throw new TollgateError('validation_failed', `amount: ${String(minor)} is not a whole number of minor units`);
  }
  const sign = minor < 0n ? '-' : '';
  const magnitude = (minor < 0n ? -minor : minor).toString().padStart(digits + 1, '0');
  const whole = magnitude.slice(0, magnitude.length - digits);
  const fraction = magnitude.slice(magnitude.length - digits);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}${symbols[currency]}${grouped}${digits > 0 ? `.${fraction}` : ''}`;
}
