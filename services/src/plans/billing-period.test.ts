import { describe, expect, it } from 'vitest';
import { billingPeriod } from './billing-period.js';

const iso = (period: { start: Date; end: Date }) => [period.start.toISOString(), period.end.toISOString()];

describe('billing periods', () => {
  it('runs from the anchor day to the same day next month, in UTC', () => {
    const anchor = new Date('2026-03-15T10:30:00Z');
    expect(iso(billingPeriod(anchor, new Date('2026-11-24T00:00:00Z')))).toEqual([
      '2026-11-15T10:30:00.000Z',
      '2026-12-15T10:30:00.000Z',
    ]);
    // Just before the anchor time: still the previous period.
    expect(iso(billingPeriod(anchor, new Date('2026-11-15T10:29:59.999Z')))).toEqual([
      '2026-10-15T10:30:00.000Z',
      '2026-11-15T10:30:00.000Z',
    ]);
    expect(iso(billingPeriod(anchor, new Date('2026-12-31T23:59:59Z')))).toEqual([
      '2026-12-15T10:30:00.000Z',
      '2027-01-15T10:30:00.000Z',
    ]);
    expect(iso(billingPeriod(anchor, new Date('2027-01-02T00:00:00Z')))).toEqual([
      '2026-12-15T10:30:00.000Z',
      '2027-01-15T10:30:00.000Z',
    ]);
  });

  it('starts on the last day of months too short for the anchor day', () => {
    const anchor = new Date('2026-01-31T00:00:00Z');
    expect(iso(billingPeriod(anchor, new Date('2026-02-10T00:00:00Z')))).toEqual([
      '2026-01-31T00:00:00.000Z',
      '2026-02-28T00:00:00.000Z',
    ]);
    expect(iso(billingPeriod(anchor, new Date('2026-03-05T00:00:00Z')))).toEqual([
      '2026-02-28T00:00:00.000Z',
      '2026-03-31T00:00:00.000Z',
    ]);
    expect(iso(billingPeriod(new Date('2023-05-29T00:00:00Z'), new Date('2028-02-29T12:00:00Z')))).toEqual([
      '2028-02-29T00:00:00.000Z',
      '2028-03-29T00:00:00.000Z',
    ]);
  });

  it('gives periods of real month lengths, not 30 days', () => {
    const anchor = new Date('2026-01-01T00:00:00Z');
    const days = (period: { start: Date; end: Date }) => (period.end.getTime() - period.start.getTime()) / 86_400_000;
    expect(days(billingPeriod(anchor, new Date('2026-02-15T00:00:00Z')))).toBe(28);
    expect(days(billingPeriod(anchor, new Date('2026-03-15T00:00:00Z')))).toBe(31);
    expect(days(billingPeriod(anchor, new Date('2026-04-15T00:00:00Z')))).toBe(30);
  });
});
