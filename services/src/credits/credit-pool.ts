import { formatMoney, fromMinorUnits, MAX_BIGINT64, parseAmount } from '../billing/money.js';
import { type Currency, currencies, metricNameSchema } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';

/**
 * What a credit amount counts (docs/billing.md, "Credits"): money in a currency, in minor units
 * (cents), or units of a metric (calls, bytes of bandwidth, a custom metric). Stored as one text
 * column `pool`: a currency code is upper case and a metric name lower case, so they never collide.
 */
export type CreditPool = { currency: Currency } | { metric: string };

export function isCurrencyPool(pool: CreditPool): pool is { currency: Currency } {
  return 'currency' in pool;
}

function invalid(path: string, message: string, hint?: string): TollgateError {
  return new TollgateError('validation_failed', `${path}: ${message}`, {
    details: { issues: [{ path, message }] },
    ...(hint ? { hint } : {}),
  });
}

/** The stored key of a pool, checked: an unknown currency or a malformed metric is a 400. */
export function poolKey(pool: CreditPool): string {
  if (isCurrencyPool(pool)) {
    if (!Object.hasOwn(currencies, pool.currency)) {
      throw invalid('currency', `${String(pool.currency)} is not a supported currency`, 'use USD, EUR or GBP');
    }
    return pool.currency;
  }
  if (!metricNameSchema.safeParse(pool.metric).success) {
    throw invalid('metric', `${JSON.stringify(pool.metric)} is not a metric name such as "calls"`);
  }
  return pool.metric;
}

export function poolFromKey(key: string): CreditPool {
  return /^[A-Z]{3}$/.test(key) ? { currency: key as Currency } : { metric: key };
}

/** A quantity of a pool as text: "25.00" (major units of a currency) or "1000000" (units). */
export function quantityText(pool: CreditPool, amount: bigint): string {
  return isCurrencyPool(pool) ? fromMinorUnits(amount, pool.currency).toFixed(currencies[pool.currency]) : `${amount}`;
}

/** As people read it: "$25.00" or "1,000,000 calls". */
export function formatQuantity(pool: CreditPool, amount: bigint): string {
  if (isCurrencyPool(pool)) return formatMoney(amount, pool.currency);
  return `${amount.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')} ${pool.metric}`;
}

/**
 * A quantity someone wrote, exactly: an amount of a currency ("25", "12.50", never more decimals
 * than the currency has) or whole units of a metric. Refuses negatives and anything but plain digits.
 */
export function parseQuantity(pool: CreditPool, text: string | number, path = 'amount'): bigint {
  if (typeof text === 'number' && !Number.isSafeInteger(text)) {
    throw invalid(path, `${text} is not exact: send it as a string, e.g. "12.50"`);
  }
  const written = String(text);
  let value: bigint;
  if (isCurrencyPool(pool)) {
    try {
      value = parseAmount(written, pool.currency);
    } catch (error) {
      if (error instanceof TollgateError && path !== 'amount') {
        throw invalid(path, error.message.replace(/^amount: /, ''), error.hint);
      }
      throw error;
    }
  } else {
    if (!/^(0|[1-9]\d*)$/.test(written)) {
      const problem = written.trim().startsWith('-') ? 'must not be negative' : 'is not a whole number of units';
      throw invalid(path, `${JSON.stringify(written)} ${problem}`, 'write whole units, e.g. 1000000');
    }
    value = BigInt(written);
  }
  if (value > MAX_BIGINT64) throw invalid(path, 'is too large');
  return value;
}
