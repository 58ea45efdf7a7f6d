import { describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import { formatMoney } from './money.js';
import { annualPriceMinor, creditsApplied, overageUnits, prorateMinor, rateLine, rateUnits } from './pricing.js';
import type { MeteredPrice } from './pricing-schema.js';

const refusal = (run: () => unknown): TollgateError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError);
    return error as TollgateError;
  }
  throw new Error('expected a refusal, got a result');
};

/** The Pro plan's overage price from the issue: $0.0005 a call, $0.0003 beyond 1,000,000 overage calls. */
const proTiers = [
  { up_to: 1_000_000, unit_price: '0.0005' },
  { up_to: null, unit_price: '0.0003' },
];
const proOverage: MeteredPrice = { model: 'graduated', tiers: proTiers };
const proIncluded = 100_000n;

/** Tiers with flat fees (docs/billing.md, "Flat fees"). */
const withFlatFees = [
  { up_to: 1000, unit_price: '0.02', flat_fee: '10' },
  { up_to: null, unit_price: '0.01', flat_fee: '5' },
];

describe('the Pro plan example (docs/billing.md)', () => {
  it('bills 150,000 calls as exactly 50,000 overage calls, $25.00', () => {
    const line = rateLine({ price: proOverage, used: 150_000n, included: proIncluded, currency: 'USD' });
    expect(line).toEqual({ units: 50_000n, amountMinor: 2500n });
    expect(formatMoney(line.amountMinor, 'USD')).toBe('$25.00');
  });

  it('bills the same usage in euros as €25.00', () => {
    const line = rateLine({ price: proOverage, used: 150_000n, included: proIncluded, currency: 'EUR' });
    expect(line).toEqual({ units: 50_000n, amountMinor: 2500n });
    expect(formatMoney(line.amountMinor, 'EUR')).toBe('€25.00');
  });

  it('bills nothing while usage stays within what the plan includes', () => {
    expect(rateLine({ price: proOverage, used: 100_000n, included: proIncluded, currency: 'USD' })).toEqual({
      units: 0n,
      amountMinor: 0n,
    });
    expect(rateLine({ price: proOverage, used: 99_999n, included: proIncluded, currency: 'USD' })).toEqual({
      units: 0n,
      amountMinor: 0n,
    });
  });
});

describe('overageUnits', () => {
  it('counts the units beyond what is included, never fewer than none', () => {
    expect(overageUnits(150_000n, 100_000n)).toBe(50_000n);
    expect(overageUnits(100_001n, 100_000n)).toBe(1n);
    expect(overageUnits(100_000n, 100_000n)).toBe(0n);
    expect(overageUnits(5n, 100_000n)).toBe(0n);
    expect(overageUnits(5n, 0n)).toBe(5n);
  });

  it('counts no overage on a plan without a quota (included null)', () => {
    expect(overageUnits(10_000_000_000n, null)).toBe(0n);
  });

  it('refuses negative or non-bigint counts', () => {
    expect(refusal(() => overageUnits(-1n, 10n)).code).toBe('validation_failed');
    expect(refusal(() => overageUnits(10n, -1n)).code).toBe('validation_failed');
    expect(refusal(() => overageUnits(10 as unknown as bigint, 1n)).code).toBe('validation_failed');
    expect(refusal(() => overageUnits(2n ** 63n, 1n)).code).toBe('validation_failed');
  });
});

describe('per_unit', () => {
  it('charges every unit at the unit price', () => {
    const price: MeteredPrice = { model: 'per_unit', unit_price: '0.0004' };
    expect(rateUnits(price, 62_500n).toFixed()).toBe('25');
    expect(rateUnits(price, 0n).toFixed()).toBe('0');
  });
});

describe('graduated', () => {
  it('prices each unit at its own tier when usage crosses a boundary', () => {
    // 1,600,000 calls on Pro: 1,500,000 overage = 1,000,000 × 0.0005 + 500,000 × 0.0003 = 500 + 150.
    expect(rateUnits(proOverage, 1_500_000n).toFixed()).toBe('650');
    const line = rateLine({ price: proOverage, used: 1_600_000n, included: proIncluded, currency: 'USD' });
    expect(line).toEqual({ units: 1_500_000n, amountMinor: 65_000n });
    expect(formatMoney(line.amountMinor, 'USD')).toBe('$650.00');
  });

  it('counts a tier bound as the last unit of that tier', () => {
    expect(rateUnits(proOverage, 1_000_000n).toFixed()).toBe('500');
    expect(rateUnits(proOverage, 1_000_001n).toFixed()).toBe('500.0003');
  });

  it('counts tier bounds in overage units, not in calls used', () => {
    // 1,100,000 calls used is exactly 1,000,000 overage: all of them still at $0.0005.
    expect(rateLine({ price: proOverage, used: 1_100_000n, included: proIncluded, currency: 'USD' })).toEqual({
      units: 1_000_000n,
      amountMinor: 50_000n,
    });
  });

  it('adds the flat fee of every tier reached, and no fee when nothing is used', () => {
    const price: MeteredPrice = { model: 'graduated', tiers: withFlatFees };
    // 500 × 0.02 + 10
    expect(rateUnits(price, 500n).toFixed()).toBe('20');
    // 1,000 × 0.02 + 10 + 500 × 0.01 + 5
    expect(rateUnits(price, 1500n).toFixed()).toBe('40');
    // One unit into the second tier is enough for its fee.
    expect(rateUnits(price, 1001n).toFixed()).toBe('35.01');
    expect(rateUnits(price, 0n).toFixed()).toBe('0');
  });
});

describe('volume', () => {
  const proVolume: MeteredPrice = { model: 'volume', tiers: proTiers };

  it('prices every unit at the tier the total falls in, unlike graduated at the same usage', () => {
    // 1,500,000 units all at $0.0003, against $650.00 graduated.
    expect(rateUnits(proVolume, 1_500_000n).toFixed()).toBe('450');
    expect(rateLine({ price: proVolume, used: 1_600_000n, included: proIncluded, currency: 'USD' })).toEqual({
      units: 1_500_000n,
      amountMinor: 45_000n,
    });
    // Within the first tier both models agree.
    expect(rateUnits(proVolume, 50_000n).toFixed()).toBe('25');
  });

  it('drops every unit to the lower price once the total passes a bound', () => {
    expect(rateUnits(proVolume, 1_000_000n).toFixed()).toBe('500');
    expect(rateUnits(proVolume, 1_000_001n).toFixed()).toBe('300.0003');
  });

  it('adds only the flat fee of the tier the total falls in', () => {
    const price: MeteredPrice = { model: 'volume', tiers: withFlatFees };
    expect(rateUnits(price, 500n).toFixed()).toBe('20');
    // 1,001 × 0.01 + 5, against $35.01 graduated.
    expect(rateUnits(price, 1001n).toFixed()).toBe('15.01');
    // 1,500 × 0.01 + 5, against $40.00 graduated.
    expect(rateUnits(price, 1500n).toFixed()).toBe('20');
    expect(rateUnits(price, 0n).toFixed()).toBe('0');
  });
});

describe('package', () => {
  const perMillion: MeteredPrice = { model: 'package', package_size: 1_000_000, package_price: '1' };

  it('charges per started block', () => {
    expect(rateLine({ price: perMillion, used: 2_500_001n, included: 0n, currency: 'USD' })).toEqual({
      units: 2_500_001n,
      amountMinor: 300n,
    });
    expect(rateUnits(perMillion, 2_000_000n).toFixed()).toBe('2');
    expect(rateUnits(perMillion, 1n).toFixed()).toBe('1');
    expect(rateUnits(perMillion, 0n).toFixed()).toBe('0');
  });
});

describe('rounding', () => {
  it('rounds half a cent up, once for the line', () => {
    const price: MeteredPrice = { model: 'per_unit', unit_price: '0.0025' };
    // 2 × 0.0025 = 0.005: half a cent, rounded up to $0.01.
    expect(rateLine({ price, used: 2n, included: 0n, currency: 'USD' }).amountMinor).toBe(1n);
    // 3 × 0.0025 = 0.0075 -> $0.01; 1 × 0.0025 -> $0.00.
    expect(rateLine({ price, used: 3n, included: 0n, currency: 'USD' }).amountMinor).toBe(1n);
    expect(rateLine({ price, used: 1n, included: 0n, currency: 'USD' }).amountMinor).toBe(0n);
  });

  it('rounds the line, not each unit', () => {
    // Rounding each unit would make 0.004 a unit cost nothing, and 0.005 a unit cost 1 cent each.
    const below: MeteredPrice = { model: 'per_unit', unit_price: '0.004' };
    expect(rateLine({ price: below, used: 1000n, included: 0n, currency: 'USD' }).amountMinor).toBe(400n);
    const half: MeteredPrice = { model: 'per_unit', unit_price: '0.005' };
    expect(rateLine({ price: half, used: 3n, included: 0n, currency: 'USD' }).amountMinor).toBe(2n);
  });

  it('rounds the line, not each tier', () => {
    // 0.004 + 0.001 = 0.005 -> $0.01; rounded per tier it would be $0.00 + $0.00.
    const price: MeteredPrice = {
      model: 'graduated',
      tiers: [
        { up_to: 1, unit_price: '0.004' },
        { up_to: null, unit_price: '0.001' },
      ],
    };
    expect(rateUnits(price, 2n).toFixed()).toBe('0.005');
    expect(rateLine({ price, used: 2n, included: 0n, currency: 'USD' }).amountMinor).toBe(1n);
  });
});

describe('exactness', () => {
  const perByte: MeteredPrice = { model: 'per_unit', unit_price: '0.000000000090' };

  it('rates tiny unit prices exactly', () => {
    expect(rateUnits(perByte, 1_234_567_890_123n).toFixed()).toBe('111.11111011107');
    expect(rateLine({ price: perByte, used: 1_234_567_890_123n, included: 0n, currency: 'USD' }).amountMinor).toBe(
      11_111n,
    );
    expect(rateUnits(perByte, 1n).toFixed()).toBe('0.00000000009');
  });

  it('keeps very large counts exact', () => {
    // 10^15 bytes (a petabyte) at $0.000000000090 a byte.
    expect(rateLine({ price: perByte, used: 10n ** 15n, included: 0n, currency: 'USD' }).amountMinor).toBe(9_000_000n);
    const perCall: MeteredPrice = { model: 'per_unit', unit_price: '0.0005' };
    expect(rateLine({ price: perCall, used: 10n ** 15n, included: 0n, currency: 'USD' }).amountMinor).toBe(
      50_000_000_000_000n,
    );
    // 2^53 + 1 units: a JavaScript number would lose the last cent.
    const perCent: MeteredPrice = { model: 'per_unit', unit_price: '0.01' };
    expect(rateLine({ price: perCent, used: 2n ** 53n + 1n, included: 0n, currency: 'USD' }).amountMinor).toBe(
      9_007_199_254_740_993n,
    );
  });

  it('stays exact at the largest price and count we store, beyond 40 significant digits', () => {
    const largest: MeteredPrice = { model: 'per_unit', unit_price: '999999999999.999999999999' };
    const units = 2n ** 63n - 1n;
    expect(rateUnits(largest, units).toFixed()).toBe('9223372036854775806999990776627.963145224193');
    expect(rateLine({ price: largest, used: units, included: 0n, currency: 'USD' }).amountMinor).toBe(
      922337203685477580699999077662796n,
    );
  });
});

describe('refusals', () => {
  it('refuses negative or non-bigint units', () => {
    const price: MeteredPrice = { model: 'per_unit', unit_price: '1' };
    expect(refusal(() => rateUnits(price, -1n)).code).toBe('validation_failed');
    expect(refusal(() => rateUnits(price, 1 as unknown as bigint)).code).toBe('validation_failed');
    expect(refusal(() => rateLine({ price, used: -5n, included: 0n, currency: 'USD' })).code).toBe('validation_failed');
  });

  it('refuses prices that are not valid prices', () => {
    const bad = [
      { model: 'per_unit', unit_price: '-1' },
      { model: 'per_unit', unit_price: '0.0000000000001' },
      { model: 'per_unit', unit_price: 0.0005 },
      { model: 'package', package_size: 0, package_price: '1' },
      { model: 'graduated', tiers: [] },
      { model: 'graduated', tiers: [{ up_to: 10, unit_price: '1' }] },
      {
        model: 'volume',
        tiers: [
          { up_to: 10, unit_price: '1' },
          { up_to: 5, unit_price: '1' },
          { up_to: null, unit_price: '1' },
        ],
      },
      { model: 'flat', unit_price: '1' },
    ];
    for (const price of bad) {
      const error = refusal(() => rateUnits(price as unknown as MeteredPrice, 10n));
      expect(error.code, JSON.stringify(price)).toBe('validation_failed');
      expect(error.message, JSON.stringify(price)).toMatch(/^price/);
    }
  });

  it('refuses a currency we do not price in', () => {
    const price: MeteredPrice = { model: 'per_unit', unit_price: '1' };
    expect(refusal(() => rateLine({ price, used: 1n, included: 0n, currency: 'JPY' as 'USD' })).code).toBe(
      'validation_failed',
    );
  });
});

describe('annualPriceMinor', () => {
  it('is twelve months less the discount, rounded once', () => {
    // 12 × 9.99 × 0.85 = 101.898 -> $101.90 (rounding the month first would give 12 × 8.49 = $101.88).
    expect(annualPriceMinor(999n, '15', 'USD')).toBe(10_190n);
    // 12 × 49 × 0.8333 = 489.9804 -> $489.98
    expect(annualPriceMinor(4900n, '16.67', 'EUR')).toBe(48_998n);
  });

  it('is twelve months without a discount and nothing at 100%', () => {
    expect(annualPriceMinor(4900n, '0', 'USD')).toBe(58_800n);
    expect(annualPriceMinor(4900n, '100', 'USD')).toBe(0n);
  });

  it('refuses a discount that is not a percentage from 0 to 100, and negative prices', () => {
    for (const discount of ['-5', '100.01', '150', 'ten', '', '0.5%', '1e1']) {
      expect(refusal(() => annualPriceMinor(4900n, discount, 'USD')).code, discount).toBe('validation_failed');
    }
    expect(refusal(() => annualPriceMinor(-4900n, '15', 'USD')).code).toBe('validation_failed');
  });
});

describe('prorateMinor', () => {
  const day = 86_400_000;

  it('charges the remaining share of the period, rounded once, half up', () => {
    expect(prorateMinor(4900n, 15 * day, 30 * day)).toBe(2450n);
    // 4900 × 15 / 31 = 2370.97 -> 2371
    expect(prorateMinor(4900n, BigInt(15 * day), BigInt(31 * day))).toBe(2371n);
    // 4900 / 3 = 1633.33 -> 1633
    expect(prorateMinor(4900n, 10 * day, 30 * day)).toBe(1633n);
    // Half a cent rounds up.
    expect(prorateMinor(1n, 1, 2)).toBe(1n);
    expect(prorateMinor(4900n, 0, 30 * day)).toBe(0n);
    expect(prorateMinor(4900n, 30 * day, 30 * day)).toBe(4900n);
  });

  it('refuses more time remaining than the period, an empty period, and negative or fractional inputs', () => {
    expect(refusal(() => prorateMinor(4900n, 31 * day, 30 * day)).code).toBe('validation_failed');
    expect(refusal(() => prorateMinor(4900n, 0, 0)).code).toBe('validation_failed');
    expect(refusal(() => prorateMinor(4900n, -1, 30 * day)).code).toBe('validation_failed');
    expect(refusal(() => prorateMinor(4900n, 1.5, 30 * day)).code).toBe('validation_failed');
    expect(refusal(() => prorateMinor(-4900n, 1, 30 * day)).code).toBe('validation_failed');
  });
});

describe('creditsApplied', () => {
  it('covers the whole invoice when the balance is enough', () => {
    expect(creditsApplied([2500n, 4900n], 10_000n)).toEqual({ appliedMinor: 7400n, remainingBalanceMinor: 2600n });
  });

  it('uses up the balance but never goes below zero when the invoice is larger', () => {
    expect(creditsApplied([2500n, 4900n], 1000n)).toEqual({ appliedMinor: 1000n, remainingBalanceMinor: 0n });
  });

  it('takes nothing for an invoice of nothing, or one that is a credit overall', () => {
    expect(creditsApplied([], 1000n)).toEqual({ appliedMinor: 0n, remainingBalanceMinor: 1000n });
    expect(creditsApplied([0n], 1000n)).toEqual({ appliedMinor: 0n, remainingBalanceMinor: 1000n });
    // A prorated refund larger than the charges.
    expect(creditsApplied([1000n, -2450n], 1000n)).toEqual({ appliedMinor: 0n, remainingBalanceMinor: 1000n });
    expect(creditsApplied([4900n, -2450n], 10_000n)).toEqual({ appliedMinor: 2450n, remainingBalanceMinor: 7550n });
  });

  it('refuses a negative balance', () => {
    expect(refusal(() => creditsApplied([100n], -1n)).code).toBe('validation_failed');
  });
});
