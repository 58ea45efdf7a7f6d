import { describe, expect, it } from 'vitest';
import { cidrText, parseCidr } from './cidr.js';

const text = (input: string) => {
  const parsed = parseCidr(input);
  return parsed.ok ? cidrText(parsed.cidr) : `error: ${parsed.problem}`;
};

describe('parseCidr', () => {
  it('reads IPv4 and IPv6 networks and single addresses in the form Postgres prints', () => {
    expect(text('10.0.0.0/8')).toBe('10.0.0.0/8');
    expect(text('203.0.113.7')).toBe('203.0.113.7/32');
    expect(text('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(text('2001:DB8::/32')).toBe('2001:db8::/32');
    expect(text('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1/128');
    expect(text('::1')).toBe('::1/128');
    expect(text('::ffff:192.0.2.0/120')).toBe('::ffff:c000:200/120');
  });

  it('refuses host bits right of the prefix and says which network was meant', () => {
    expect(text('10.0.0.1/8')).toBe(
      'error: "10.0.0.1/8" has bits set right of the /8 prefix; did you mean 10.0.0.0/8?',
    );
    expect(text('2001:db8::1/64')).toContain('did you mean 2001:db8::/64?');
  });

  it('refuses what is not an address, and prefixes out of range', () => {
    for (const bad of [
      '10.0.0.0/33',
      '::/129',
      'example.com',
      '10.0.0/8',
      '10.0.0.0/',
      '10.0.0.0/-1',
      'fe80::1%eth0',
    ]) {
      expect(parseCidr(bad).ok).toBe(false);
    }
  });
});
