import { randomBytes, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hashPassword, passwordProblems, verifyPassword } from './passwords.js';

describe('hashPassword and verifyPassword', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const encoded = await hashPassword('correct horse battery staple');
    expect(encoded).toMatch(/^scrypt\$v=1\$N=32768,r=8,p=1\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/);
    expect(encoded).not.toContain('correct horse');
    expect(await verifyPassword('correct horse battery staple', encoded)).toEqual({ ok: true, needsRehash: false });
    expect(await verifyPassword('correct horse battery stapler', encoded)).toEqual({ ok: false, needsRehash: false });
    expect(await verifyPassword('', encoded)).toEqual({ ok: false, needsRehash: false });
  });

  it('salts every hash, so one password never hashes the same twice', async () => {
    const [a, b] = await Promise.all([hashPassword('same password here'), hashPassword('same password here')]);
    expect(a).not.toBe(b);
    expect((await verifyPassword('same password here', b ?? '')).ok).toBe(true);
  });

  it('accepts the password however its accents were composed (NFKC before hashing)', async () => {
    const composed = 'caf\u00e9 au lait, tr\u00e8s chaud';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    expect((await verifyPassword(decomposed, await hashPassword(composed))).ok).toBe(true);
  });

  it('treats malformed or unknown encodings as no match instead of throwing', async () => {
    const valid = await hashPassword('correct horse battery staple');
    const [, , , salt, hash] = valid.split('$');
    const malformed = [
      '',
      'plaintext-password',
      '$2b$10$abcdefghijklmnopqrstuuN0n7ZbuZh4iPbHk5NHc0Dd2pnJ6u2dO', // bcrypt
      valid.replace('v=1', 'v=2'),
      valid.replace('scrypt$', 'argon2id$'),
      valid.replace('N=32768', 'N=30000'), // not a power of two
      valid.replace('N=32768', 'N=1073741824'), // far too much memory to attempt
      valid.replace('p=1', 'p=0'),
      `scrypt$v=1$N=32768,r=8,p=1$${salt}$`,
      `scrypt$v=1$N=32768,r=8,p=1$$${hash}`,
      `scrypt$v=1$N=32768,r=8,p=1$${salt}$${hash}$extra`,
      `scrypt$v=1$N=32768,r=8,p=1$${salt}$not*base64`,
      `${valid}\n`,
    ];
    for (const encoded of malformed) {
      expect(await verifyPassword('correct horse battery staple', encoded)).toEqual({ ok: false, needsRehash: false });
    }
    // Whatever a database driver may hand back for a missing hash.
    expect(await verifyPassword('x', null as unknown as string)).toEqual({ ok: false, needsRehash: false });
  });

  it('asks for a rehash of a matching hash made with weaker parameters', async () => {
    const salt = randomBytes(16);
    const hash = scryptSync('correct horse battery staple', salt, 32, { N: 16_384, r: 8, p: 1 });
    const weak = `scrypt$v=1$N=16384,r=8,p=1$${salt.toString('base64')}$${hash.toString('base64')}`;
    expect(await verifyPassword('correct horse battery staple', weak)).toEqual({ ok: true, needsRehash: true });
    // A wrong password is never "needs rehash": there is nothing to rehash it with.
    expect(await verifyPassword('wrong password entirely', weak)).toEqual({ ok: false, needsRehash: false });
  });
});

describe('passwordProblems', () => {
  const longRandomPassphrase = 'violet-tractor-harbour-quietly-19-sponge';

  it('accepts a long passphrase', () => {
    expect(passwordProblems(longRandomPassphrase, { email: 'alice@example.com', name: 'Alice Liddell' })).toEqual([]);
  });

  it('asks for at least 12 characters, counting code points after NFKC', () => {
    expect(passwordProblems('short-pw', {})).toEqual(['must be at least 12 characters']);
    // 11 emoji are 22 UTF-16 units but 11 characters.
    expect(passwordProblems('\u{1F511}'.repeat(11), {})).toEqual(['must be at least 12 characters']);
    expect(passwordProblems('\u{1F511}'.repeat(12), {})).toEqual([]);
    // NFKC folds the "ﬃ" ligature into three letters: 10 code points become 12.
    expect(passwordProblems('\uFB03-zephyr-q', {})).toEqual([]);
  });

  it('refuses more than 256 characters', () => {
    expect(passwordProblems('a'.repeat(257), {})).toEqual(['must be at most 256 characters']);
    expect(passwordProblems('xq7'.repeat(85), {})).toEqual([]);
  });

  it('refuses common passwords from the built-in list, in any case', () => {
    // Each of these is a line of services/data/common-passwords.txt.
    for (const common of ['password1234', 'qwerty123456', '1qaz2wsx3edc', 'passwordpassword', 'PassWord1234']) {
      expect(passwordProblems(common, {})).toEqual(['is too common: it appears in lists of leaked passwords']);
    }
    // Shorter common passwords get both problems.
    expect(passwordProblems('letmein', {})).toEqual([
      'must be at least 12 characters',
      'is too common: it appears in lists of leaked passwords',
    ]);
  });

  it('catches a full-width variant of a common password (NFKC)', () => {
    expect(passwordProblems('\uFF50\uFF41\uFF53\uFF53\uFF57\uFF4F\uFF52\uFF44\uFF11\uFF12\uFF13\uFF14', {})).toEqual([
      'is too common: it appears in lists of leaked passwords',
    ]);
  });

  it('refuses a password containing the local part of the email address', () => {
    const problem = 'must not contain your email address';
    expect(passwordProblems('Margaret.Hamilton1969!', { email: 'margaret.hamilton@example.com' })).toEqual([problem]);
    expect(passwordProblems('zz-margaret-apollo-11', { email: 'Margaret+tollgate@example.com' })).toEqual([problem]);
    // Too short a local part to judge by.
    expect(passwordProblems('bob-violet-tractor-harbour', { email: 'bob@example.com' })).toEqual([]);
  });

  it('refuses a password equal to the name', () => {
    expect(passwordProblems('Margaret Hamilton', { name: 'margaret hamilton' })).toEqual(['must not be your name']);
    expect(passwordProblems('Margaret Hamilton rocks', { name: 'Margaret Hamilton' })).toEqual([]);
  });
});

describe('services/data/common-passwords.txt', () => {
  it('holds at least 10,000 entries and says where they come from', () => {
    const lines = readFileSync(new URL('../../data/common-passwords.txt', import.meta.url), 'utf8').split('\n');
    expect(lines[0]).toMatch(/^# Source: npm package @zxcvbn-ts\/language-common [\d.]+, .*license MIT\.$/);
    expect(lines.filter((line) => line !== '' && !line.startsWith('#')).length).toBeGreaterThanOrEqual(10_000);
  });
});
