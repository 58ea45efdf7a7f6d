import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { generateSecret, generateSync } from 'otplib';

/**
 * The building blocks of two-factor authentication: TOTP (authenticator apps), recovery codes and
 * codes sent by email or SMS. Pure functions: storing seeds (sealed with the master keyring), hashes and the
 * last used TOTP step is the caller's job.
 */

// TOTP, RFC 6238 with the parameters every authenticator app supports: HMAC-SHA-1, 6 digits, 30 s.

/** Seconds per TOTP time step. */
export const totpPeriodSeconds = 30;
const totpDigits = 6;
/** 160 bits, the HMAC-SHA-1 output size that RFC 4226 section 4 recommends for the shared secret. */
const totpSecretBytes = 20;
/** Steps accepted either side of the current one, for phones whose clocks drift (RFC 6238 section 5.2). */
const totpDriftSteps = 1;

/** A new TOTP seed: 20 random bytes in base32 (32 characters, no padding). Seal it before storing it. */
export function newTotpSecret(): string {
  return generateSecret({ length: totpSecretBytes });
}

/**
 * The `otpauth://` URI an authenticator app scans (Google's Key Uri Format). Every parameter is spelt
 * out, defaults included, because some apps ignore a missing one and others guess. Label and issuer
 * are percent-encoded (a space is `%20`, never `+`, which some apps show literally); the colon between
 * them stays literal, and a colon inside the account name is encoded so it cannot split the label.
 */
export function totpUri(options: { secret: string; accountName: string; issuer?: string }): string {
  const { secret, accountName, issuer = 'Tollgate' } = options;
  if (issuer === '' || issuer.includes(':')) {
    // The issuer prefixes the label before a colon; one inside it would make the label ambiguous.
    throw new TypeError('the TOTP issuer must be non-empty and contain no colon');
  }
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(accountName)}`;
  const parameters = [
    `secret=${encodeURIComponent(secret)}`,
    `issuer=${encodeURIComponent(issuer)}`,
    'algorithm=SHA1',
    `digits=${totpDigits}`,
    `period=${totpPeriodSeconds}`,
  ];
  return `otpauth://totp/${label}?${parameters.join('&')}`;
}

export type TotpVerification =
  /** `step`: store it as the last used step and pass it as `lastUsedStep` next time. */
  { ok: true; step: number } | { ok: false; reason: 'malformed' | 'wrong' | 'replayed' };

/**
 * Checks a code from an authenticator app. The codes of the current step and of one step either side
 * are accepted (clock drift). A code whose step is at or before `lastUsedStep` is `replayed`: a TOTP
 * code must work once only (RFC 6238 section 5.2), so the caller stores the returned step and refuses
 * that step and every earlier one afterwards. Spaces the user typed ("123 456") are ignored.
 *
 * Throws (a TypeError or an otplib error) only for the caller's mistakes: a secret that is not base32
 * of at least 16 bytes, a `lastUsedStep` that is not a non-negative integer, an invalid `now`.
 */
export function verifyTotp(options: {
  secret: string;
  code: string;
  lastUsedStep?: number | null | undefined;
  now?: Date;
}): TotpVerification {
  const { secret, lastUsedStep } = options;
  if (lastUsedStep != null && !(Number.isSafeInteger(lastUsedStep) && lastUsedStep >= 0)) {
    throw new TypeError('lastUsedStep must be a non-negative integer');
  }
  const code = typeof options.code === 'string' ? options.code.replace(/\s+/g, '') : '';
  if (!/^[0-9]{6}$/.test(code)) return { ok: false, reason: 'malformed' };

  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const currentStep = Math.floor(nowSeconds / totpPeriodSeconds);
  const typed = Buffer.from(code);
  let fresh: number | undefined;
  let replayed = false;
  // Every step in the window is computed and compared, matched or not, so the time taken does not
  // depend on which step (if any) the code belongs to.
  for (let step = Math.max(0, currentStep - totpDriftSteps); step <= currentStep + totpDriftSteps; step++) {
    const expected = generateSync({
      secret,
      epoch: step * totpPeriodSeconds,
      period: totpPeriodSeconds,
      digits: totpDigits,
      algorithm: 'sha1',
    });
    if (!timingSafeEqual(Buffer.from(expected), typed)) continue;
    if (lastUsedStep != null && step <= lastUsedStep) replayed = true;
    else fresh ??= step;
  }
  if (fresh !== undefined) return { ok: true, step: fresh };
  return { ok: false, reason: replayed ? 'replayed' : 'wrong' };
}

/**
 * A QR code of an `otpauth://` URI drawn with half-block characters, for `tollgate 2fa enable`.
 * By default it is painted black on white with ANSI escapes, so it scans on dark and light terminal
 * themes alike; `ansi: false` (for NO_COLOR) draws it in the terminal's own colours instead, which
 * some phone scanners cannot read on a dark background: show the secret as text beside it either way.
 */
export async function totpQrForTerminal(uri: string, options: { ansi?: boolean } = {}): Promise<string> {
  // Loaded on first use: only the CLI draws QR codes, and the server need not load the renderer.
  const qrcode = await import('qrcode');
  // Low error correction keeps the code (and so the terminal) as small as possible; a screen is not
  // a printed label that gets scratched.
  return options.ansi === false
    ? qrcode.toString(uri, { type: 'utf8', errorCorrectionLevel: 'L' })
    : qrcode.toString(uri, { type: 'terminal', small: true, errorCorrectionLevel: 'L' });
}

// Recovery codes: single-use codes the user keeps on paper for when the phone is lost.

/** Lowercase letters and digits without 0, 1, i, l and o, which are easily confused: 31 symbols. */
const recoveryAlphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
const recoveryCodeLength = 10;
const recoveryCodeFormat = new RegExp(`^[${recoveryAlphabet}]{${recoveryCodeLength}}$`);

/**
 * `count` distinct recovery codes like `k7m2q-x9hfa`, each 10 symbols from crypto randomness
 * (10 * log2(31), about 49.5 bits). Show them once; store only `hashRecoveryCode` of each.
 */
export function newRecoveryCodes(count = 10): string[] {
  const codes = new Set<string>();
  while (codes.size < count) {
    let code = '';
    for (let i = 0; i < recoveryCodeLength; i++) code += recoveryAlphabet[randomInt(recoveryAlphabet.length)];
    codes.add(`${code.slice(0, 5)}-${code.slice(5)}`);
  }
  return [...codes];
}

/** A typed recovery code as it is hashed: lowercase, without dashes and whitespace. */
export function normalizeRecoveryCode(input: string): string {
  return input.replace(/[\s-]+/g, '').toLowerCase();
}

/**
 * SHA-256 (hex) of the normalized code. A fast, unsalted hash is enough here, unlike for passwords:
 * the codes are random with about 49.5 bits of entropy, so no dictionary helps and online guessing is
 * hopeless (the caller rate limits attempts). The cost is offline: with a database dump, about 2^49.5
 * hashes (days on one GPU) enumerate the whole space, for every user at once since there is no salt.
 */
export function hashRecoveryCode(code: string): string {
  return sha256Hex(normalizeRecoveryCode(code));
}

/**
 * The index in `storedHashes` (the user's unused codes) of the hash matching the typed code, or -1.
 * The caller removes that hash in the same transaction, so each code works once. Every stored hash is
 * compared in constant time and none is skipped after a match.
 */
export function matchRecoveryCode(input: string, storedHashes: readonly string[]): number {
  if (typeof input !== 'string') return -1;
  const normalized = normalizeRecoveryCode(input);
  if (!recoveryCodeFormat.test(normalized)) return -1;
  const typed = createHash('sha256').update(normalized).digest();
  let found = -1;
  for (const [index, stored] of storedHashes.entries()) {
    if (digestEquals(typed, stored) && found === -1) found = index;
  }
  return found;
}

// Email codes: a second factor for accounts without an authenticator app.

/**
 * Six random digits to send by email, and the SHA-256 (hex) to store. There are only 10^6 codes:
 * the caller must limit attempts (a handful per code, then a new code) and let the code expire within
 * minutes. The hash keeps the code out of logs and backups at a glance, but cannot hide it from
 * anyone holding the row: a million hashes are computed in well under a second.
 */
export function newEmailCode(): { code: string; hash: string } {
  const code = randomInt(1_000_000).toString().padStart(6, '0');
  return { code, hash: sha256Hex(code) };
}

/** Whether a typed email code (spaces ignored) is the one `hash` was made from; constant time. */
export function emailCodeMatches(input: string, hash: string): boolean {
  if (typeof input !== 'string') return false;
  const code = input.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(code)) return false;
  return digestEquals(createHash('sha256').update(code).digest(), hash);
}

// SMS codes: the same six digits, sent as a text message instead of an email.

/**
 * Six random digits to send by SMS, and the SHA-256 (hex) to store; the same caveats as
 * `newEmailCode`: the caller limits attempts and lets the code expire within minutes.
 */
export function newSmsCode(): { code: string; hash: string } {
  return newEmailCode();
}

/** Whether a typed SMS code (spaces ignored) is the one `hash` was made from; constant time. */
export function smsCodeMatches(input: string, hash: string): boolean {
  return emailCodeMatches(input, hash);
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Compares a SHA-256 digest with a stored hex hash in constant time; false for a malformed hash. */
function digestEquals(digest: Buffer, storedHex: string): boolean {
  if (typeof storedHex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(storedHex)) return false;
  return timingSafeEqual(digest, Buffer.from(storedHex, 'hex'));
}
