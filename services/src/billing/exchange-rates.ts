import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import { MoneyDecimal, minorUnitsOf, scaledDecimal, toMinorUnits } from './money.js';
import { type Currency, currencySchema } from './pricing-schema.js';

/**
 * The operator's exchange rates for reporting (docs/billing.md, "Exchange rates"): 1 unit of a
 * currency is worth `rate` units of the base currency (TOLLGATE_BASE_CURRENCY). Rates are exact
 * decimal strings; every change is a new row with its `effective_at`, so a figure from last March
 * converts at last March's rate. Conversion multiplies (never divides), so it is exact until the
 * one rounding to the base currency's minor unit, with the money.ts rule (half up).
 */

/** Digits after the point a rate may have, and before it. */
export const rateDecimals = 12;
const rateWholeDigits = 12;

export interface ExchangeRate {
  currency: Currency;
  baseCurrency: Currency;
  /** Exact, without trailing zeros: "0.92". */
  rate: string;
  effectiveAt: Date;
  setByUserId: string | null;
  createdAt: Date;
}

function invalid(path: string, message: string, hint?: string): TollgateError {
  return new TollgateError('validation_failed', `${path}: ${message}`, {
    ...(hint ? { hint } : {}),
    details: { issues: [{ path, message }] },
  });
}

/** A currency this installation prices in, upper-cased ("eur" -> "EUR"); validation_failed otherwise. */
export function parseCurrency(text: string, path = 'currency'): Currency {
  const parsed = currencySchema.safeParse(typeof text === 'string' ? text.toUpperCase() : text);
  if (!parsed.success) {
    throw invalid(
      path,
      `${JSON.stringify(text)} is not a currency this installation prices in`,
      `use one of ${currencySchema.options.join(', ')}`,
    );
  }
  return parsed.data;
}

/**
 * A rate as the operator typed it ("0.92", "1.0857") normalised without trailing zeros. Refused: 0,
 * negatives, exponents, anything not a plain decimal, more than 12 decimals or 12 whole digits.
 */
export function parseExchangeRate(text: string): string {
  const scaled = typeof text === 'string' ? scaledDecimal(text, rateDecimals) : undefined;
  const whole = typeof text === 'string' ? (text.split('.')[0] ?? '') : '';
  if (scaled === undefined || whole.length > rateWholeDigits) {
    throw invalid(
      'rate',
      `${JSON.stringify(text)} is not a rate such as "0.92" (a plain decimal, at most ${rateDecimals} decimals)`,
      'write how many units of the base currency one unit of the currency is worth, e.g. 0.92',
    );
  }
  if (scaled === 0n) throw invalid('rate', 'must be more than 0');
  return rateText(scaled);
}

/** 920000000000n (scaled by 10^12) -> "0.92". */
function rateText(scaled: bigint): string {
  const digits = scaled.toString().padStart(rateDecimals + 1, '0');
  const whole = digits.slice(0, digits.length - rateDecimals);
  const fraction = digits.slice(digits.length - rateDecimals).replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : whole;
}

/**
 * `amountMinor` of `currency` in minor units of `baseCurrency` at `rate`, exactly: the product is
 * formed in integers and rounded once, half up, by `toMinorUnits`.
 */
export function convertAmount(amountMinor: bigint, currency: Currency, rate: string, baseCurrency: Currency): bigint {
  if (typeof amountMinor !== 'bigint') {
    throw invalid('amount', `${String(amountMinor)} is not a whole number of minor units`);
  }
  const scaled = scaledDecimal(rate, rateDecimals);
  if (scaled === undefined || scaled === 0n) throw invalid('rate', `${JSON.stringify(rate)} is not a rate`);
  // A string with an exponent is taken exactly by decimal.js (no rounding to `precision`).
  const product = new MoneyDecimal(`${amountMinor * scaled}e-${rateDecimals + minorUnitsOf(currency)}`);
  return toMinorUnits(product, baseCurrency);
}

interface RateRow {
  currency: string;
  base_currency: string;
  rate: string;
  effective_at: Date;
  set_by_user_id: string | null;
  created_at: Date;
}

const rateOf = (row: RateRow): ExchangeRate => ({
  currency: row.currency.trim() as Currency,
  baseCurrency: row.base_currency.trim() as Currency,
  rate: rateText(scaledDecimal(row.rate, rateDecimals) ?? 0n),
  effectiveAt: row.effective_at,
  setByUserId: row.set_by_user_id,
  createdAt: row.created_at,
});

const rateColumns = 'currency, base_currency, rate::text, effective_at, set_by_user_id, created_at';

/** Records a new rate of `currency` to the base currency, effective from `effectiveAt` (now by default). */
export async function setExchangeRate(
  tx: Queryable,
  input: { currency: string; rate: string; baseCurrency: Currency; effectiveAt?: Date; userId?: string | null },
): Promise<ExchangeRate> {
  const currency = parseCurrency(input.currency);
  const rate = parseExchangeRate(input.rate);
  if (currency === input.baseCurrency) {
    throw invalid('currency', `${currency} is the base currency: its rate is 1 by definition`);
  }
  const result = await tx.query<RateRow>(
    `INSERT INTO exchange_rates (currency, base_currency, rate, effective_at, set_by_user_id)
     VALUES ($1, $2, $3::numeric, coalesce($4, now()), $5) RETURNING ${rateColumns}`,
    [currency, input.baseCurrency, rate, input.effectiveAt ?? null, input.userId ?? null],
  );
  return rateOf(result.rows[0] as RateRow);
}

/**
 * The rates to `baseCurrency`: with `history`, every row newest first; otherwise the rate in force at
 * `at` (now by default) for each currency.
 */
export async function listExchangeRates(
  db: Queryable,
  input: { baseCurrency: Currency; history?: boolean; at?: Date },
): Promise<ExchangeRate[]> {
  const result = input.history
    ? await db.query<RateRow>(
        `SELECT ${rateColumns} FROM exchange_rates WHERE base_currency = $1
         ORDER BY currency, effective_at DESC, created_at DESC`,
        [input.baseCurrency],
      )
    : await db.query<RateRow>(
        `SELECT DISTINCT ON (currency) ${rateColumns} FROM exchange_rates
         WHERE base_currency = $1 AND effective_at <= coalesce($2, now())
         ORDER BY currency, effective_at DESC, created_at DESC`,
        [input.baseCurrency, input.at ?? null],
      );
  return result.rows.map(rateOf);
}

/** The rate of `currency` in force at `at`: the newest effective at or before it; undefined without one. */
export async function findExchangeRate(
  db: Queryable,
  input: { currency: Currency; baseCurrency: Currency; at: Date },
): Promise<ExchangeRate | undefined> {
  const result = await db.query<RateRow>(
    `SELECT ${rateColumns} FROM exchange_rates WHERE base_currency = $1 AND currency = $2 AND effective_at <= $3
     ORDER BY effective_at DESC, created_at DESC LIMIT 1`,
    [input.baseCurrency, input.currency, input.at],
  );
  const row = result.rows[0];
  return row ? rateOf(row) : undefined;
}

export interface ConvertedAmount {
  /** minor units of the base currency */
  amountMinor: bigint;
  baseCurrency: Currency;
  /** "1" for an amount already in the base currency. */
  rate: string;
  /** When the rate used took effect; null for the base currency itself. */
  rateEffectiveAt: Date | null;
}

/**
 * An amount (minor units of `currency`) in the base currency at the rate in force at `at`, for the
 * revenue figures: exact, rounded once, half up. No rate at that time: `not_found` naming the
 * currency and the command that sets one.
 */
export async function convertToBase(
  db: Queryable,
  input: { amountMinor: bigint; currency: Currency; at: Date; baseCurrency: Currency },
): Promise<ConvertedAmount> {
  if (input.currency === input.baseCurrency) {
    return { amountMinor: input.amountMinor, baseCurrency: input.baseCurrency, rate: '1', rateEffectiveAt: null };
  }
  const rate = await findExchangeRate(db, input);
  if (!rate) {
    throw new TollgateError(
      'not_found',
      `no exchange rate from ${input.currency} to ${input.baseCurrency} in force at ${input.at.toISOString()}`,
      { hint: `set one with \`tollgate billing rates set ${input.currency} <rate>\`` },
    );
  }
  return {
    amountMinor: convertAmount(input.amountMinor, input.currency, rate.rate, input.baseCurrency),
    baseCurrency: input.baseCurrency,
    rate: rate.rate,
    rateEffectiveAt: rate.effectiveAt,
  };
}
