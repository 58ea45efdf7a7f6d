import { describe, expect, it } from 'vitest';
import { entitlementsHeaderValue } from './entitlement-header.js';

describe('the Tollgate-Entitlements header (an RFC 9651 Dictionary)', () => {
  it('writes the seeded Pro plan with sorted keys', () => {
    expect(entitlementsHeaderValue({ support: 'email', sso: false, max_team_members: 10 })).toBe(
      'max_team_members=10, sso=?0, support="email"',
    );
  });

  it('writes true as a bare key and false as ?0', () => {
    expect(entitlementsHeaderValue({ sso: true, audit: false })).toBe('audit=?0, sso');
  });

  it('is empty for a plan without entitlements (an empty Dictionary)', () => {
    expect(entitlementsHeaderValue({})).toBe('');
  });

  it('writes integers as sf-integers up to 15 digits, larger ones as strings of their JSON text', () => {
    expect(entitlementsHeaderValue({ a: 0, b: -7, c: 999_999_999_999_999, d: -999_999_999_999_999 })).toBe(
      'a=0, b=-7, c=999999999999999, d=-999999999999999',
    );
    expect(entitlementsHeaderValue({ big: 1_000_000_000_000_000, huge: 1e21 })).toBe(
      'big="1000000000000000", huge="1e+21"',
    );
    expect(entitlementsHeaderValue({ zero: -0 })).toBe('zero=0');
  });

  it('writes decimals that fit (12 integer, 3 fractional digits) as sf-decimals, others as strings', () => {
    expect(entitlementsHeaderValue({ a: 99.95, b: -0.5, c: 123_456_789_012.125 })).toBe(
      'a=99.95, b=-0.5, c=123456789012.125',
    );
    expect(entitlementsHeaderValue({ third: 1 / 3, long: 1_234_567_890_123.5, tiny: 1e-7, four: 0.1234 })).toBe(
      'four="0.1234", long="1234567890123.5", third="0.3333333333333333", tiny="1e-7"',
    );
  });

  it('escapes backslashes and double quotes in strings', () => {
    expect(entitlementsHeaderValue({ note: 'say "hi" \\ bye' })).toBe('note="say \\"hi\\" \\\\ bye"');
    expect(entitlementsHeaderValue({ empty: '' })).toBe('empty=""');
  });

  it('writes text beyond printable ASCII as a Display String, UTF-8 percent-encoded in lower-case hex', () => {
    expect(entitlementsHeaderValue({ region: 'Zürich' })).toBe('region=%"Z%c3%bcrich"');
    expect(entitlementsHeaderValue({ mood: '100% 🙂 "ok"' })).toBe('mood=%"100%25 %f0%9f%99%82 %22ok%22"');
    // Controls never reach the header raw: no header injection through a plan.
    expect(entitlementsHeaderValue({ tab: 'a\tb\r\nX-Evil: 1' })).toBe('tab=%"a%09b%0d%0aX-Evil: 1"');
  });

  it('leaves out what no plan can hold rather than break the header', () => {
    const stored = { ok: true, Bad: true, 'x y': 1, nested: { a: 1 }, nothing: null } as unknown as Record<
      string,
      boolean
    >;
    expect(entitlementsHeaderValue(stored)).toBe('ok');
  });
});
