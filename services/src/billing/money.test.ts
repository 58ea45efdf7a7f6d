import { Decimal } from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import {
  formatMoney,
  fromMinorUnits,
  MoneyDecimal,
  minorUnitsOf,
  parseAmount,
  roundMinorUnits,
  toMinorUnits,
} from './money.js';
import type { Currency } from './pricing-schema.js';

const refusal = (run: () => unknown): TollgateError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError);
    return error as TollgateError;
  }
  throw new Error('expected a refusal, got a result');
};

describe('minor units', () => {
  it('are cents and pence for every supported currency', () => {
    expect(minorUnitsOf('USD')).toBe(2);
    expect(minorUnitsOf('EUR')).toBe(2);
    expect(minorUnitsOf('GBP')).toBe(2);
  });

  it('refuse a currency we do not price in', () => {
    expect(refusal(() => minorUnitsOf('JPY' as Currency)).code).toBe('validation_failed');
    expect(refusal(() => toMinorUnits(new MoneyDecimal('1'), 'toString' as Currency)).code).toBe('validation_failed');
  });
});

describe('toMinorUnits, the one rounding rule', () => {
  it('rounds a half up to the next minor unit', () => {
    expect(toMinorUnits(new MoneyDecimal('0.005'), 'USD')).toBe(1n);
    expect(toMinorUnits(new MoneyDecimal('25.125'), 'EUR')).toBe(2513n);
    expect(toMinorUnits(new MoneyDecimal('0.015'), 'GBP')).toBe(2n);
  });

  it('rounds less than a half down, however close', () => {
    expect(toMinorUnits(new MoneyDecimal('0.0049999999999'), 'USD')).toBe(0n);
    expect(toMinorUnits(new MoneyDecimal('25.004'), 'USD')).toBe(2500n);
    expect(toMinorUnits(new MoneyDecimal('0.0050000000001'), 'USD')).toBe(1n);
  });

  it('rounds a negative half away from zero, so a credit mirrors a charge', () => {
    expect(toMinorUnits(new MoneyDecimal('-0.005'), 'USD')).toBe(-1n);
    expect(toMinorUnits(new MoneyDecimal('-3.004'), 'USD')).toBe(-300n);
    expect(toMinorUnits(new MoneyDecimal('-0.004'), 'USD')).toBe(0n);
  });

  it('follows its own rule whatever decimal.js settings a value was made under, and changes none', () => {
    expect(toMinorUnits(new Decimal('2.345'), 'USD')).toBe(235n);
    const bankers = Decimal.clone({ rounding: Decimal.ROUND_HALF_EVEN });
    expect(toMinorUnits(new bankers('2.345'), 'USD')).toBe(235n);
    // MoneyDecimal is a clone: the library's defaults, which other code may use, are untouched.
    expect(Decimal.precision).toBe(20);
    expect(MoneyDecimal.precision).toBe(40);
  });

  it('is exact beyond 40 significant digits', () => {
    expect(toMinorUnits(new MoneyDecimal('9223372036854775806999990776627.963145224193'), 'USD')).toBe(
      922337203685477580699999077662796n,
    );
  });

  it('refuses what is not a finite amount', () => {
    expect(refusal(() => toMinorUnits(new MoneyDecimal(Number.NaN), 'USD')).code).toBe('validation_failed');
    expect(refusal(() => toMinorUnits(new MoneyDecimal(Number.POSITIVE_INFINITY), 'USD')).code).toBe(
      'validation_failed',
    );
    expect(refusal(() => toMinorUnits(0.005 as unknown as Decimal, 'USD')).code).toBe('validation_failed');
  });

  it('rounds amounts already in minor units the same way', () => {
    expect(roundMinorUnits(new MoneyDecimal('1633.5'))).toBe(1634n);
    expect(roundMinorUnits(new MoneyDecimal('1633.4999'))).toBe(1633n);
    expect(roundMinorUnits(new MoneyDecimal('-0.5'))).toBe(-1n);
  });
});

describe('fromMinorUnits', () => {
  it('gives the exact amount in major units', () => {
    expect(fromMinorUnits(2500n, 'USD').toFixed()).toBe('25');
    expect(fromMinorUnits(5n, 'GBP').toFixed()).toBe('0.05');
    expect(fromMinorUnits(-300n, 'EUR').toFixed()).toBe('-3');
    expect(fromMinorUnits(9223372036854775807n, 'USD').toFixed()).toBe('92233720368547758.07');
  });

  it('round-trips through toMinorUnits unchanged', () => {
    for (const minor of [0n, 1n, 99n, 123456n, -42n, 9223372036854775807n]) {
      expect(toMinorUnits(fromMinorUnits(minor, 'EUR'), 'EUR')).toBe(minor);
    }
  });
});

describe('parseAmount', () => {
  it('reads major units exactly', () => {
    expect(parseAmount('25', 'USD')).toBe(2500n);
    expect(parseAmount('12.5', 'EUR')).toBe(1250n);
    expect(parseAmount('12.50', 'EUR')).toBe(1250n);
    expect(parseAmount('0.05', 'GBP')).toBe(5n);
    expect(parseAmount('0', 'USD')).toBe(0n);
    // Beyond what a float holds exactly.
    expect(parseAmount('90071992547409.93', 'USD')).toBe(9007199254740993n);
  });

  it('refuses more decimals than the currency has, rather than rounding them away', () => {
    const error = refusal(() => parseAmount('0.001', 'USD'));
    expect(error.code).toBe('validation_failed');
    expect(error.message).toContain('more than 2 decimals');
    expect(refusal(() => parseAmount('1.000', 'EUR')).code).toBe('validation_failed');
  });

  it('refuses negative amounts', () => {
    const error = refusal(() => parseAmount('-3.00', 'USD'));
    expect(error.code).toBe('validation_failed');
    expect(error.message).toContain('negative');
  });

  it('refuses anything that is not a plain decimal', () => {
    for (const text of ['', ' 1', '1 ', 'abc', '1,000', '1e3', '.5', '5.', '+5', '007', '0x10', '1.2.3', 'NaN']) {
      const error = refusal(() => parseAmount(text, 'USD'));
      expect(error.code, text).toBe('validation_failed');
      expect(error.message, text).toContain('is not an amount');
    }
    expect(refusal(() => parseAmount(25 as unknown as string, 'USD')).code).toBe('validation_failed');
  });
});

describe('formatMoney', () => {
  it('writes amounts as an invoice shows them', () => {
    expect(formatMoney(2500n, 'USD')).toBe('$25.00');
    expect(formatMoney(123456n, 'EUR')).toBe('€1,234.56');
    expect(formatMoney(5n, 'GBP')).toBe('£0.05');
    expect(formatMoney(0n, 'USD')).toBe('$0.00');
    expect(formatMoney(123456789012n, 'USD')).toBe('$1,234,567,890.12');
    expect(formatMoney(100000n, 'GBP')).toBe('£1,000.00');
  });

  it('puts the minus sign before the currency symbol', () => {
    expect(formatMoney(-300n, 'USD')).toBe('-$3.00');
    expect(formatMoney(-5n, 'EUR')).toBe('-€0.05');
  });

  it('agrees with parseAmount', () => {
    expect(formatMoney(parseAmount('1234.5', 'EUR'), 'EUR')).toBe('€1,234.50');
  });
});
