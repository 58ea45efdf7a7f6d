import { describe, expect, it } from 'vitest';
import { nextAttemptAt, retryDelayMs } from './retry-schedule.js';

describe('webhook retry schedule', () => {
  it('waits 30 s, then doubles up to 6 h', () => {
    expect([1, 2, 3, 4, 5].map(retryDelayMs)).toEqual([30_000, 60_000, 120_000, 240_000, 480_000]);
    expect(retryDelayMs(10)).toBe(15_360_000);
    expect(retryDelayMs(11)).toBe(21_600_000);
    expect(retryDelayMs(500)).toBe(21_600_000);
  });

  it('schedules nothing after the delivery window closes', () => {
    const now = new Date('2025-01-01T00:00:00Z');
    expect(nextAttemptAt(1, now, new Date('2025-01-01T01:00:00Z'))).toEqual(new Date('2025-01-01T00:00:30Z'));
    expect(nextAttemptAt(1, now, new Date('2025-01-01T00:00:10Z'))).toBeUndefined();
  });
});
