import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads whole numbers of seconds, minutes, hours and days, and a bare 0', () => {
    expect(parseDuration('90d')).toBe(90 * 86_400_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('0h')).toBe(0);
  });

  it('refuses anything else', () => {
    for (const text of ['', '12', '-1d', '1.5h', '1w', 'd', '1 d', '1dd']) expect(parseDuration(text)).toBeUndefined();
  });
});
