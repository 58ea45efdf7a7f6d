import { describe, expect, it } from 'vitest';
import { convertAmount, parseExchangeRate } from './exchange-rates.js';

describe('exchange rates', () => {
  it('converts exactly and rounds once, half up, to the base minor unit', () => {
    // 100.00 EUR at 0.92 is 92.00 USD.
    expect(convertAmount(10_000n, 'EUR', '0.92', 'USD')).toBe(9_200n);
    // 0.01 EUR at 0.5 is half a cent: half up to 1 cent; at 0.4999... it stays 0.
    expect(convertAmount(1n, 'EUR', '0.5', 'USD')).toBe(1n);
    expect(convertAmount(1n, 'EUR', '0.499999999999', 'USD')).toBe(0n);
    expect(convertAmount(-1n, 'EUR', '0.5', 'USD')).toBe(-1n);
    // A 64-bit amount times a 12-decimal rate, beyond what floats or 40 digits hold, exactly.
    expect(convertAmount(9_223_372_036_854_775_807n, 'GBP', '1.123456789012', 'USD')).toBe(10_362_059_932_387_936_552n);
    // 123.45 EUR at 0.1 is 12.345 USD: half up to 12.35.
    expect(convertAmount(1_234_5n, 'EUR', '0.1', 'USD')).toBe(1_235n);
  });

  it('takes plain positive decimals and refuses 0, negatives and anything else', () => {
    expect(parseExchangeRate('0.92')).toBe('0.92');
    expect(parseExchangeRate('1.50000')).toBe('1.5');
    expect(parseExchangeRate('3')).toBe('3');
    for (const bad of ['0', '0.000', '-0.92', '1e3', 'abc', '', ' 1', '0.1234567890123', '1,5', '.5', 'NaN']) {
      expect(() => parseExchangeRate(bad), bad).toThrow(/rate: /);
    }
  });
});
