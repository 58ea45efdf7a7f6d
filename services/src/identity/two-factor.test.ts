import { generateSync } from 'otplib';
import { describe, expect, it } from 'vitest';
import {
  emailCodeMatches,
  hashRecoveryCode,
  matchRecoveryCode,
  newEmailCode,
  newRecoveryCodes,
  newTotpSecret,
  normalizeRecoveryCode,
  totpPeriodSeconds,
  totpQrForTerminal,
  totpUri,
  verifyTotp,
} from './two-factor.js';

/** The code an authenticator app shows during `step`. */
function codeAt(secret: string, step: number): string {
  return generateSync({ secret, epoch: step * totpPeriodSeconds });
}

const now = new Date('2026-03-14T15:09:26.535Z');
const currentStep = Math.floor(now.getTime() / 1000 / totpPeriodSeconds);
// Fixed seeds and a fixed clock keep these tests deterministic (random seeds would, once in a few
// hundred thousand runs, give two steps the same code).
const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const otherSecret = 'KRUGS4ZANFZSAYLON52GQZLSEBZWKY3S';

describe('TOTP', () => {
  it('makes 160-bit base32 secrets, different each time', () => {
    const fresh = newTotpSecret();
    expect(fresh).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(fresh);
  });

  it('accepts the current code and returns its step', () => {
    expect(verifyTotp({ secret, code: codeAt(secret, currentStep), now })).toEqual({ ok: true, step: currentStep });
  });

  it('accepts the codes one step either side for clock drift, and no further', () => {
    for (const step of [currentStep - 1, currentStep + 1]) {
      expect(verifyTotp({ secret, code: codeAt(secret, step), now })).toEqual({ ok: true, step });
    }
    for (const step of [currentStep - 2, currentStep + 2]) {
      expect(verifyTotp({ secret, code: codeAt(secret, step), now })).toEqual({ ok: false, reason: 'wrong' });
    }
  });

  it('refuses a code of another secret', () => {
    const code = codeAt(otherSecret, currentStep);
    expect(verifyTotp({ secret, code, now })).toEqual({ ok: false, reason: 'wrong' });
  });

  it('ignores spaces the user typed', () => {
    const code = codeAt(secret, currentStep);
    const typed = ` ${code.slice(0, 3)} ${code.slice(3)} `;
    expect(verifyTotp({ secret, code: typed, now })).toEqual({ ok: true, step: currentStep });
  });

  it('refuses a code used before, and the code of any earlier step', () => {
    const code = codeAt(secret, currentStep);
    const first = verifyTotp({ secret, code, now });
    expect(first).toEqual({ ok: true, step: currentStep });
    const lastUsedStep = currentStep;
    expect(verifyTotp({ secret, code, lastUsedStep, now })).toEqual({ ok: false, reason: 'replayed' });
    const earlier = codeAt(secret, currentStep - 1);
    expect(verifyTotp({ secret, code: earlier, lastUsedStep, now })).toEqual({ ok: false, reason: 'replayed' });
    // The next step's code is still fresh.
    const next = codeAt(secret, currentStep + 1);
    expect(verifyTotp({ secret, code: next, lastUsedStep, now })).toEqual({ ok: true, step: currentStep + 1 });
  });

  it('treats a null last step (never used) like none', () => {
    const code = codeAt(secret, currentStep);
    expect(verifyTotp({ secret, code, lastUsedStep: null, now })).toEqual({ ok: true, step: currentStep });
  });

  it.each(['12345', 'abcdef', '1234567', '', '12345a', '12-3456'])('calls %j malformed', (code) => {
    expect(verifyTotp({ secret, code, now })).toEqual({ ok: false, reason: 'malformed' });
  });

  // RFC 6238 appendix B, SHA-1: the seed is the ASCII string "12345678901234567890" (base32 below);
  // the RFC lists 8-digit codes, whose last 6 digits are the 6-digit code.
  const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  it.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
  ])('matches the RFC 6238 test vector at T=%i', (seconds, rfcCode) => {
    const step = Math.floor(seconds / totpPeriodSeconds);
    const result = verifyTotp({ secret: rfcSecret, code: rfcCode.slice(2), now: new Date(seconds * 1000) });
    expect(result).toEqual({ ok: true, step });
  });

  it('builds an otpauth URI with every parameter and an encoded label', () => {
    const uri = totpUri({ secret, accountName: 'Ann Lee+2fa@example.com' });
    expect(uri.startsWith('otpauth://totp/Tollgate:Ann%20Lee%2B2fa%40example.com?')).toBe(true);
    const url = new URL(uri);
    expect(url.protocol).toBe('otpauth:');
    expect(url.host).toBe('totp');
    expect(decodeURIComponent(url.pathname)).toBe('/Tollgate:Ann Lee+2fa@example.com');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      secret,
      issuer: 'Tollgate',
      algorithm: 'SHA1',
      digits: '6',
      period: '30',
    });
  });

  it('encodes a custom issuer in the label and the parameter alike', () => {
    const url = new URL(totpUri({ secret: 'ABC', accountName: 'a@b.c', issuer: 'Acme & Co' }));
    expect(decodeURIComponent(url.pathname)).toBe('/Acme & Co:a@b.c');
    expect(url.searchParams.get('issuer')).toBe('Acme & Co');
    expect(() => totpUri({ secret: 'ABC', accountName: 'a@b.c', issuer: 'a:b' })).toThrow(TypeError);
  });

  it('draws the URI as a multi-line QR code for a terminal', async () => {
    const uri = totpUri({ secret, accountName: 'ann@example.com' });
    for (const qr of [await totpQrForTerminal(uri), await totpQrForTerminal(uri, { ansi: false })]) {
      const lines = qr.trimEnd().split('\n');
      expect(lines.length).toBeGreaterThan(10);
      expect(qr).toMatch(/[▀▄█]/);
    }
  });
});

describe('recovery codes', () => {
  it('makes ten distinct codes like xxxxx-xxxxx from an unambiguous alphabet', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) {
      expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
      expect(code).not.toMatch(/[01ilo]/);
    }
    expect(newRecoveryCodes(3)).toHaveLength(3);
  });

  it('matches a code typed in any case, with or without the dash', () => {
    const codes = newRecoveryCodes();
    const hashes = codes.map(hashRecoveryCode);
    const code = codes[3] ?? '';
    expect(hashes[3]).toMatch(/^[0-9a-f]{64}$/);
    expect(normalizeRecoveryCode(' AbCdE-fGhJk ')).toBe('abcdefghjk');
    expect(matchRecoveryCode(code, hashes)).toBe(3);
    expect(matchRecoveryCode(code.toUpperCase(), hashes)).toBe(3);
    expect(matchRecoveryCode(code.replace('-', ''), hashes)).toBe(3);
    expect(matchRecoveryCode(code.replace('-', ' '), hashes)).toBe(3);
  });

  it('no longer matches a code whose hash was removed after use', () => {
    const codes = newRecoveryCodes();
    const hashes = codes.map(hashRecoveryCode);
    const index = matchRecoveryCode(codes[0] ?? '', hashes);
    const unused = hashes.filter((_, i) => i !== index);
    expect(matchRecoveryCode(codes[0] ?? '', unused)).toBe(-1);
    expect(matchRecoveryCode(codes[1] ?? '', unused)).toBe(0);
  });

  it('matches nothing for an unknown or malformed code', () => {
    const hashes = newRecoveryCodes().map(hashRecoveryCode);
    expect(matchRecoveryCode(newRecoveryCodes(1)[0] ?? '', hashes)).toBe(-1);
    expect(matchRecoveryCode('', hashes)).toBe(-1);
    expect(matchRecoveryCode('abcde', hashes)).toBe(-1);
    expect(matchRecoveryCode('abcde-fghjk', ['not a hash'])).toBe(-1);
  });
});

describe('email codes', () => {
  it('are six digits, and match only themselves', () => {
    const first = newEmailCode();
    expect(first.code).toMatch(/^[0-9]{6}$/);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(emailCodeMatches(first.code, first.hash)).toBe(true);
    expect(emailCodeMatches(` ${first.code.slice(0, 3)} ${first.code.slice(3)}`, first.hash)).toBe(true);
    const other = String((Number(first.code) + 1) % 1_000_000).padStart(6, '0');
    expect(emailCodeMatches(other, first.hash)).toBe(false);
    expect(emailCodeMatches(`${first.code}0`, first.hash)).toBe(false);
    expect(emailCodeMatches(first.code, 'not a hash')).toBe(false);
  });

  it('are not all the same', () => {
    const codes = new Set(Array.from({ length: 20 }, () => newEmailCode().code));
    expect(codes.size).toBeGreaterThan(1);
  });
});
