import { describe, expect, it } from 'vitest';
import { formatBytes } from './format-bytes.js';

describe('formatBytes', () => {
  it('prints bytes in SI units with one decimal', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_500)).toBe('1.5 kB');
    expect(formatBytes(12_000_000)).toBe('12.0 MB');
    expect(formatBytes(3_210_000_000_000)).toBe('3.2 TB');
  });
});
