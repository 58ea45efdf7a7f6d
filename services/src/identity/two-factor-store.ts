import { createHash, randomBytes } from 'node:crypto';
import { TollgateError } from '../errors/tollgate-error.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import { maskPhoneNumber } from '../sms/phone-number.js';
import type { Queryable } from '../storage/database.js';
import {
  emailCodeMatches,
  hashRecoveryCode,
  matchRecoveryCode,
  newRecoveryCodes,
  newSmsCode,
  newTotpSecret,
  smsCodeMatches,
  totpUri,
  verifyTotp,
} from './two-factor.js';

/**
 * Where each user's second factors are kept (user_two_factor) and the login challenges that sit
 * between a right password and a session (two_factor_challenges). The building blocks (TOTP, recovery
 * and email codes) are in two-factor.ts; the HTTP edge, with the audit entries, in two-factor-routes.ts.
 */

export type SecondFactorMethod = 'totp' | 'recovery_code' | 'email' | 'sms';

/** A login challenge lives five minutes. */
export const challengeLifetimeMs = 5 * 60 * 1000;
/** Wrong codes one challenge takes; then it is dead and the user logs in again. */
export const maxChallengeAttempts = 5;
/** Emails one challenge can send, so one known password cannot flood the user's inbox. */
export const maxEmailCodesPerChallenge = 3;
/** Text messages one challenge can send, for the same reason. */
export const maxSmsCodesPerChallenge = 3;
/**
 * Text messages an account is sent in `smsWindowMs`, confirmation and login codes together. Each one
 * costs money and buzzes a phone: a session or a known password must not turn Tollgate into a pager.
 */
export const maxSmsPerWindow = 10;
export const smsWindowMs = 60 * 60 * 1000;
/** A code sent to confirm a new phone number works this long, and for `maxChallengeAttempts` wrong tries. */
export const smsEnrolmentLifetimeMs = 10 * 60 * 1000;
/**
 * Wrong codes an account takes over `failureWindowMs`, across challenges and signed-in confirmations.
 * A TOTP guess succeeds with odds of 3 in a million (three steps are accepted), so this bounds a
 * guesser who knows the password to about 2,000 guesses a day: an expected wait of over a century.
 */
export const maxFailuresPerWindow = 20;
export const failureWindowMs = 15 * 60 * 1000;
export const recoveryCodeCount = 10;

const challengePrefix = 'tgc_';

export interface TwoFactorSettings {
  userId: string;
  /** Sealed with the master keyring; open it with `totpSeedContext(userId)`. */
  totpSecretSealed: string | null;
  totpConfirmedAt: Date | null;
  totpLastStep: number | null;
  recoveryCodeHashes: string[];
  emailCodesEnabled: boolean;
  /** The phone number, sealed with the master keyring; open it with `smsPhoneContext(userId)`. */
  smsPhoneSealed: string | null;
  /** `+1 *** *** 4567`: what the person is shown. */
  smsPhoneMasked: string | null;
  /** Null while the number is pending: a confirmation code was sent but has not come back. */
  smsConfirmedAt: Date | null;
  smsEnrolmentCodeHash: string | null;
  smsEnrolmentExpiresAt: Date | null;
  smsEnrolmentAttempts: number;
}

interface SettingsRow {
  user_id: string;
  totp_secret_sealed: string | null;
  totp_confirmed_at: Date | null;
  totp_last_step: number | null;
  recovery_code_hashes: string[];
  email_codes_enabled: boolean;
  sms_phone_sealed: string | null;
  sms_phone_masked: string | null;
  sms_confirmed_at: Date | null;
  sms_enrolment_code_hash: string | null;
  sms_enrolment_expires_at: Date | null;
  sms_enrolment_attempts: number;
}

const settingsColumns =
  'user_id, totp_secret_sealed, totp_confirmed_at, totp_last_step, recovery_code_hashes, email_codes_enabled, ' +
  'sms_phone_sealed, sms_phone_masked, sms_confirmed_at, sms_enrolment_code_hash, sms_enrolment_expires_at, ' +
  'sms_enrolment_attempts';

/** The context a TOTP seed is sealed under: a seed copied to another user's row does not open. */
export function totpSeedContext(userId: string): string {
  return `totp_seed:user:${userId}`;
}

/** The context a phone number is sealed under, for the same reason. */
export function smsPhoneContext(userId: string): string {
  return `sms_phone:user:${userId}`;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

/** The user's second-factor settings; `forUpdate` locks the row until the transaction ends. */
export async function loadTwoFactorSettings(
  db: Queryable,
  userId: string,
  options: { forUpdate?: boolean } = {},
): Promise<TwoFactorSettings | undefined> {
  const result = await db.query<SettingsRow>(
    `SELECT ${settingsColumns} FROM user_two_factor WHERE user_id = $1${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [userId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    userId: row.user_id,
    totpSecretSealed: row.totp_secret_sealed,
    totpConfirmedAt: row.totp_confirmed_at,
    totpLastStep: row.totp_last_step,
    recoveryCodeHashes: row.recovery_code_hashes ?? [],
    emailCodesEnabled: row.email_codes_enabled,
    smsPhoneSealed: row.sms_phone_sealed,
    smsPhoneMasked: row.sms_phone_masked,
    smsConfirmedAt: row.sms_confirmed_at,
    smsEnrolmentCodeHash: row.sms_enrolment_code_hash,
    smsEnrolmentExpiresAt: row.sms_enrolment_expires_at,
    smsEnrolmentAttempts: row.sms_enrolment_attempts,
  };
}

/** The factors that can complete a login; empty when the password alone opens a session. */
export function loginMethods(settings: TwoFactorSettings | undefined): SecondFactorMethod[] {
  if (!settings) return [];
  const methods: SecondFactorMethod[] = [];
  if (settings.totpConfirmedAt) methods.push('totp', 'recovery_code');
  if (settings.emailCodesEnabled) methods.push('email');
  if (settings.smsConfirmedAt) methods.push('sms');
  return methods;
}

export interface TwoFactorStatus {
  /** `pending`: a secret was handed out but no code from the app confirmed it yet. */
  totp: 'off' | 'pending' | 'enabled';
  totpConfirmedAt: Date | null;
  emailCodes: boolean;
  recoveryCodesRemaining: number;
  /** `pending`: a code was sent to the number but has not come back yet. */
  sms: 'off' | 'pending' | 'enabled';
  /** Masked, like `+1 *** *** 4567`; null when `sms` is off. */
  smsPhone: string | null;
}

export function twoFactorStatus(settings: TwoFactorSettings | undefined): TwoFactorStatus {
  const totp = !settings?.totpSecretSealed ? 'off' : settings.totpConfirmedAt ? 'enabled' : 'pending';
  return {
    totp,
    totpConfirmedAt: settings?.totpConfirmedAt ?? null,
    emailCodes: settings?.emailCodesEnabled ?? false,
    recoveryCodesRemaining: totp === 'enabled' ? (settings?.recoveryCodeHashes.length ?? 0) : 0,
    sms: !settings?.smsPhoneSealed ? 'off' : settings.smsConfirmedAt ? 'enabled' : 'pending',
    smsPhone: settings?.smsPhoneMasked ?? null,
  };
}

/**
 * Starts (or restarts) setting up an authenticator app: a new seed, sealed and stored unconfirmed.
 * The seed is returned to show the user once. Refused when an app is already confirmed: replacing it
 * silently would let a stolen session swap the owner's second factor for its own.
 */
export async function startTotpEnrolment(
  tx: Queryable,
  options: { userId: string; accountName: string; keyring: MasterKeyring; now?: Date },
): Promise<{ secret: string; uri: string }> {
  const secret = newTotpSecret();
  const sealed = options.keyring.encrypt(secret, totpSeedContext(options.userId));
  const stored = await tx.query(
    `INSERT INTO user_two_factor (user_id, totp_secret_sealed, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET totp_secret_sealed = EXCLUDED.totp_secret_sealed,
       totp_last_step = NULL, updated_at = EXCLUDED.updated_at
     WHERE user_two_factor.totp_confirmed_at IS NULL`,
    [options.userId, sealed, options.now ?? new Date()],
  );
  if (stored.rowCount === 0) throw alreadyEnabled();
  return { secret, uri: totpUri({ secret, accountName: options.accountName }) };
}

export type CodeFailure = 'malformed' | 'wrong' | 'replayed';

/**
 * Confirms the pending authenticator app with a code from it: 2FA is on from here, and the recovery
 * codes (returned once, stored as hashes) replace any earlier ones.
 */
export async function confirmTotpEnrolment(
  tx: Queryable,
  options: { userId: string; code: string; keyring: MasterKeyring; now?: Date },
): Promise<{ ok: true; recoveryCodes: string[] } | { ok: false; reason: CodeFailure }> {
  const now = options.now ?? new Date();
  const settings = await loadTwoFactorSettings(tx, options.userId, { forUpdate: true });
  if (settings?.totpConfirmedAt) throw alreadyEnabled();
  if (!settings?.totpSecretSealed) {
    throw new TollgateError('two_factor_not_enabled', 'no authenticator app is being set up', {
      hint: 'start with POST /v1/me/2fa/totp (tollgate 2fa enable)',
    });
  }
  const secret = options.keyring.decryptText(settings.totpSecretSealed, totpSeedContext(options.userId));
  const verified = verifyTotp({ secret, code: options.code, now });
  if (!verified.ok) return verified;
  const recoveryCodes = newRecoveryCodes(recoveryCodeCount);
  await tx.query(
    `UPDATE user_two_factor SET totp_confirmed_at = $2, totp_last_step = $3, recovery_code_hashes = $4, updated_at = $2
     WHERE user_id = $1`,
    [options.userId, now, verified.step, recoveryCodes.map(hashRecoveryCode)],
  );
  return { ok: true, recoveryCodes };
}

export type SecondFactorCheck =
  | { ok: true; method: SecondFactorMethod }
  | { ok: false; method: SecondFactorMethod; reason: CodeFailure };

/**
 * Checks a second-factor code and, when it is right, uses it up in the same transaction: a TOTP
 * code's step becomes the last used one (so that code and every earlier one are refused from now
 * on), a recovery code's hash is removed. `settings` must have been loaded `forUpdate` in `tx`, so
 * two requests cannot both spend one code.
 *
 * Without `method`, six digits are tried as a TOTP code, then as the email code, then as the SMS code;
 * anything else as a recovery code. Only the methods in `allowed` are tried.
 */
export async function useSecondFactor(
  tx: Queryable,
  settings: TwoFactorSettings,
  options: {
    code: string;
    method?: SecondFactorMethod | undefined;
    allowed: readonly SecondFactorMethod[];
    keyring: MasterKeyring;
    /** The email code sent for this login, if any. */
    emailCodeHash?: string | null | undefined;
    /** The SMS code sent for this login, if any. */
    smsCodeHash?: string | null | undefined;
    now?: Date;
  },
): Promise<SecondFactorCheck> {
  const now = options.now ?? new Date();
  const sixDigits = /^[0-9]{6}$/.test(options.code.replace(/\s+/g, ''));
  const candidates = options.method
    ? [options.method]
    : (sixDigits ? (['totp', 'email', 'sms'] as const) : (['recovery_code'] as const)).filter((method) =>
        options.allowed.includes(method),
      );
  const first = candidates[0] ?? options.allowed[0] ?? 'totp';
  let failure: CodeFailure = 'wrong';
  for (const method of candidates) {
    if (!options.allowed.includes(method)) continue;
    if (method === 'totp' && settings.totpSecretSealed && settings.totpConfirmedAt) {
      const secret = options.keyring.decryptText(settings.totpSecretSealed, totpSeedContext(settings.userId));
      const verified = verifyTotp({ secret, code: options.code, lastUsedStep: settings.totpLastStep, now });
      if (verified.ok) {
        await tx.query('UPDATE user_two_factor SET totp_last_step = $2, updated_at = $3 WHERE user_id = $1', [
          settings.userId,
          verified.step,
          now,
        ]);
        return { ok: true, method };
      }
      if (verified.reason === 'replayed') failure = 'replayed';
    } else if (method === 'recovery_code') {
      const index = matchRecoveryCode(options.code, settings.recoveryCodeHashes);
      const hash = settings.recoveryCodeHashes[index];
      if (hash !== undefined) {
        await tx.query(
          `UPDATE user_two_factor SET recovery_code_hashes = array_remove(recovery_code_hashes, $2), updated_at = $3
           WHERE user_id = $1`,
          [settings.userId, hash, now],
        );
        return { ok: true, method };
      }
    } else if (method === 'email' && options.emailCodeHash) {
      if (emailCodeMatches(options.code, options.emailCodeHash)) return { ok: true, method };
    } else if (method === 'sms' && options.smsCodeHash) {
      if (smsCodeMatches(options.code, options.smsCodeHash)) return { ok: true, method };
    }
  }
  return { ok: false, method: first, reason: failure };
}

/** Counts a wrong code against the account and forgets the ones older than the window. */
export async function recordSecondFactorFailure(tx: Queryable, userId: string, now = new Date()): Promise<void> {
  await tx.query('DELETE FROM two_factor_failures WHERE user_id = $1 AND failed_at <= $2', [
    userId,
    new Date(now.getTime() - failureWindowMs),
  ]);
  await tx.query('INSERT INTO two_factor_failures (user_id, failed_at) VALUES ($1, $2)', [userId, now]);
}

/** Refuses with `rate_limited` while the account has had too many wrong codes lately. */
export async function assertSecondFactorNotThrottled(tx: Queryable, userId: string, now = new Date()): Promise<void> {
  const result = await tx.query<{ failures: number }>(
    'SELECT count(*)::int AS failures FROM two_factor_failures WHERE user_id = $1 AND failed_at > $2',
    [userId, new Date(now.getTime() - failureWindowMs)],
  );
  if ((result.rows[0]?.failures ?? 0) >= maxFailuresPerWindow) {
    throw new TollgateError('rate_limited', 'too many wrong two-factor codes for this account', {
      hint: `wait ${failureWindowMs / 60_000} minutes and try again`,
    });
  }
}

/** Turns every second factor off and forgets the seed, the recovery codes and pending challenges. */
export async function disableTwoFactor(tx: Queryable, userId: string): Promise<void> {
  await tx.query('DELETE FROM user_two_factor WHERE user_id = $1', [userId]);
  await tx.query('DELETE FROM two_factor_challenges WHERE user_id = $1 AND used_at IS NULL', [userId]);
}

/** New recovery codes replacing all unused ones; returned once, stored as hashes. */
export async function replaceRecoveryCodes(tx: Queryable, userId: string, now = new Date()): Promise<string[]> {
  const codes = newRecoveryCodes(recoveryCodeCount);
  await tx.query('UPDATE user_two_factor SET recovery_code_hashes = $2, updated_at = $3 WHERE user_id = $1', [
    userId,
    codes.map(hashRecoveryCode),
    now,
  ]);
  return codes;
}

/** Turns email codes on or off as a second factor; a row left with no factor at all is removed. */
export async function setEmailCodes(tx: Queryable, userId: string, enabled: boolean, now = new Date()): Promise<void> {
  await tx.query(
    `INSERT INTO user_two_factor (user_id, email_codes_enabled, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET email_codes_enabled = EXCLUDED.email_codes_enabled,
       updated_at = EXCLUDED.updated_at`,
    [userId, enabled, now],
  );
  if (!enabled) await removeEmptySettings(tx, userId);
}

// Login challenges.

export interface LoginChallenge {
  id: string;
  userId: string;
  expiresAt: Date;
  usedAt: Date | null;
  attempts: number;
  emailCodeHash: string | null;
  emailCodesSent: number;
  smsCodeHash: string | null;
  smsCodesSent: number;
}

/**
 * A challenge for a user whose password was just right: the token (`tgc_` and 32 random bytes) is
 * returned once and only its SHA-256 is stored. The user's challenges that expired over a day ago
 * are deleted on the way.
 */
export async function issueLoginChallenge(
  tx: Queryable,
  userId: string,
  now = new Date(),
): Promise<{ challenge: string; expiresAt: Date }> {
  await tx.query('DELETE FROM two_factor_challenges WHERE user_id = $1 AND expires_at < $2', [
    userId,
    new Date(now.getTime() - 24 * 60 * 60 * 1000),
  ]);
  const challenge = `${challengePrefix}${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + challengeLifetimeMs);
  await tx.query(
    'INSERT INTO two_factor_challenges (challenge_sha256, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
    [sha256(challenge), userId, now, expiresAt],
  );
  return { challenge, expiresAt };
}

/** The challenge a token names, locked until the transaction ends; undefined for an unknown token. */
export async function findLoginChallenge(tx: Queryable, token: string): Promise<LoginChallenge | undefined> {
  if (typeof token !== 'string' || !token.startsWith(challengePrefix)) return undefined;
  const result = await tx.query<{
    id: string;
    user_id: string;
    expires_at: Date;
    used_at: Date | null;
    attempts: number;
    email_code_hash: string | null;
    email_codes_sent: number;
    sms_code_hash: string | null;
    sms_codes_sent: number;
  }>(
    `SELECT id, user_id, expires_at, used_at, attempts, email_code_hash, email_codes_sent, sms_code_hash, sms_codes_sent
     FROM two_factor_challenges WHERE challenge_sha256 = $1 FOR UPDATE`,
    [sha256(token)],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    userId: row.user_id,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
    attempts: row.attempts,
    emailCodeHash: row.email_code_hash,
    emailCodesSent: row.email_codes_sent,
    smsCodeHash: row.sms_code_hash,
    smsCodesSent: row.sms_codes_sent,
  };
}

/** Why a challenge can take no more codes, or undefined while it can. */
export function challengeDeadReason(challenge: LoginChallenge, now = new Date()): string | undefined {
  if (challenge.usedAt) return 'this login was already completed';
  if (challenge.expiresAt.getTime() <= now.getTime()) return 'this login expired: it has to be completed in 5 minutes';
  if (challenge.attempts >= maxChallengeAttempts) return 'too many wrong codes for this login';
  return undefined;
}

/** Counts a wrong code against the challenge; returns the attempts so far. */
export async function countChallengeAttempt(tx: Queryable, challengeId: string): Promise<number> {
  const result = await tx.query<{ attempts: number }>(
    'UPDATE two_factor_challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts',
    [challengeId],
  );
  return result.rows[0]?.attempts ?? maxChallengeAttempts;
}

export async function markChallengeUsed(tx: Queryable, challengeId: string, now = new Date()): Promise<void> {
  await tx.query('UPDATE two_factor_challenges SET used_at = $2 WHERE id = $1', [challengeId, now]);
}

/** Stores the hash of a new email code for the challenge (the previous one stops working). */
export async function storeChallengeEmailCode(tx: Queryable, challengeId: string, codeHash: string): Promise<void> {
  await tx.query(
    `UPDATE two_factor_challenges SET email_code_hash = $2, email_codes_sent = email_codes_sent + 1 WHERE id = $1`,
    [challengeId, codeHash],
  );
}

/** Stores the hash of a new SMS code for the challenge (the previous one stops working). */
export async function storeChallengeSmsCode(tx: Queryable, challengeId: string, codeHash: string): Promise<void> {
  await tx.query(
    `UPDATE two_factor_challenges SET sms_code_hash = $2, sms_codes_sent = sms_codes_sent + 1 WHERE id = $1`,
    [challengeId, codeHash],
  );
}

// SMS codes: a phone number confirmed by a code sent to it, then codes sent at login.

/**
 * Refuses with `rate_limited` (and when to come back) while the account has been sent
 * `maxSmsPerWindow` text messages in the last `smsWindowMs`; otherwise counts one more, and forgets
 * the ones older than the window. Call it in the transaction that stores the code about to be sent.
 */
export async function countSmsSend(tx: Queryable, userId: string, now = new Date()): Promise<void> {
  const windowStart = new Date(now.getTime() - smsWindowMs);
  await tx.query('DELETE FROM sms_sends WHERE user_id = $1 AND sent_at <= $2', [userId, windowStart]);
  const sent = await tx.query<{ sends: number; oldest: Date | null }>(
    'SELECT count(*)::int AS sends, min(sent_at) AS oldest FROM sms_sends WHERE user_id = $1',
    [userId],
  );
  const row = sent.rows[0];
  if ((row?.sends ?? 0) >= maxSmsPerWindow) {
    const freesAt = (row?.oldest?.getTime() ?? now.getTime()) + smsWindowMs;
    const retryAfterSeconds = Math.max(1, Math.ceil((freesAt - now.getTime()) / 1000));
    throw new TollgateError('rate_limited', 'enough text messages were sent to this account for now', {
      hint: `wait ${Math.ceil(retryAfterSeconds / 60)} minutes, or use another second factor`,
      details: { retry_after_seconds: retryAfterSeconds },
    });
  }
  await tx.query('INSERT INTO sms_sends (user_id, sent_at) VALUES ($1, $2)', [userId, now]);
}

/**
 * Starts (or restarts) adding a phone number: the number is sealed and stored pending, with the hash
 * of a new confirmation code, which is returned to send. Refused when SMS codes are already on: a
 * stolen session must not swap the owner's number for its own. The caller sends the code after the
 * commit and calls `abandonSmsEnrolment` when sending fails.
 */
export async function startSmsEnrolment(
  tx: Queryable,
  options: { userId: string; phone: string; keyring: MasterKeyring; now?: Date },
): Promise<{ code: string; codeHash: string; masked: string; expiresAt: Date }> {
  const now = options.now ?? new Date();
  const current = await loadTwoFactorSettings(tx, options.userId, { forUpdate: true });
  if (current?.smsConfirmedAt) throw smsAlreadyEnabled();
  await countSmsSend(tx, options.userId, now);
  const { code, hash } = newSmsCode();
  const masked = maskPhoneNumber(options.phone);
  const expiresAt = new Date(now.getTime() + smsEnrolmentLifetimeMs);
  await tx.query(
    `INSERT INTO user_two_factor (user_id, sms_phone_sealed, sms_phone_masked, sms_enrolment_code_hash,
       sms_enrolment_expires_at, sms_enrolment_attempts, updated_at)
     VALUES ($1, $2, $3, $4, $5, 0, $6)
     ON CONFLICT (user_id) DO UPDATE SET sms_phone_sealed = EXCLUDED.sms_phone_sealed,
       sms_phone_masked = EXCLUDED.sms_phone_masked, sms_enrolment_code_hash = EXCLUDED.sms_enrolment_code_hash,
       sms_enrolment_expires_at = EXCLUDED.sms_enrolment_expires_at, sms_enrolment_attempts = 0,
       updated_at = EXCLUDED.updated_at`,
    [
      options.userId,
      options.keyring.encrypt(options.phone, smsPhoneContext(options.userId)),
      masked,
      hash,
      expiresAt,
      now,
    ],
  );
  return { code, codeHash: hash, masked, expiresAt };
}

/**
 * Forgets a pending number whose confirmation code could not be sent (unless a newer enrolment
 * replaced it meanwhile): a number nobody can confirm is personal data kept for nothing.
 */
export async function abandonSmsEnrolment(tx: Queryable, userId: string, codeHash: string): Promise<void> {
  await tx.query(
    `UPDATE user_two_factor SET sms_phone_sealed = NULL, sms_phone_masked = NULL, sms_enrolment_code_hash = NULL,
       sms_enrolment_expires_at = NULL, sms_enrolment_attempts = 0
     WHERE user_id = $1 AND sms_confirmed_at IS NULL AND sms_enrolment_code_hash = $2`,
    [userId, codeHash],
  );
  await removeEmptySettings(tx, userId);
}

export type SmsEnrolmentFailure = 'wrong' | 'expired' | 'exhausted';

/**
 * Confirms the pending phone number with the code sent to it: SMS codes are a second factor from
 * here. A wrong code counts against the enrolment (`maxChallengeAttempts`, then a new code is needed);
 * the caller also counts it against the account. `settings` must have been loaded `forUpdate` in `tx`.
 */
export async function confirmSmsEnrolment(
  tx: Queryable,
  settings: TwoFactorSettings | undefined,
  options: { code: string; now?: Date },
): Promise<{ ok: true } | { ok: false; reason: SmsEnrolmentFailure; attemptsLeft: number }> {
  const now = options.now ?? new Date();
  if (settings?.smsConfirmedAt) throw smsAlreadyEnabled();
  if (!settings?.smsPhoneSealed || !settings.smsEnrolmentCodeHash || !settings.smsEnrolmentExpiresAt) {
    throw new TollgateError('two_factor_not_enabled', 'no phone number is being set up', {
      hint: 'start with POST /v1/me/2fa/sms (tollgate 2fa enable --method sms --phone ...)',
    });
  }
  if (settings.smsEnrolmentExpiresAt.getTime() <= now.getTime()) {
    return { ok: false, reason: 'expired', attemptsLeft: 0 };
  }
  if (settings.smsEnrolmentAttempts >= maxChallengeAttempts) return { ok: false, reason: 'exhausted', attemptsLeft: 0 };
  if (!smsCodeMatches(options.code, settings.smsEnrolmentCodeHash)) {
    const counted = await tx.query<{ attempts: number }>(
      `UPDATE user_two_factor SET sms_enrolment_attempts = sms_enrolment_attempts + 1 WHERE user_id = $1
       RETURNING sms_enrolment_attempts AS attempts`,
      [settings.userId],
    );
    const attempts = counted.rows[0]?.attempts ?? maxChallengeAttempts;
    return { ok: false, reason: 'wrong', attemptsLeft: Math.max(maxChallengeAttempts - attempts, 0) };
  }
  await tx.query(
    `UPDATE user_two_factor SET sms_confirmed_at = $2, sms_enrolment_code_hash = NULL, sms_enrolment_expires_at = NULL,
       sms_enrolment_attempts = 0, updated_at = $2
     WHERE user_id = $1`,
    [settings.userId, now],
  );
  return { ok: true };
}

/** Turns SMS codes off (or cancels a pending number): the number is forgotten. */
export async function disableSms(tx: Queryable, userId: string, now = new Date()): Promise<void> {
  await tx.query(
    `UPDATE user_two_factor SET sms_phone_sealed = NULL, sms_phone_masked = NULL, sms_confirmed_at = NULL,
       sms_enrolment_code_hash = NULL, sms_enrolment_expires_at = NULL, sms_enrolment_attempts = 0, updated_at = $2
     WHERE user_id = $1`,
    [userId, now],
  );
  // A code already sent for a login in progress stops working with the factor.
  await tx.query('UPDATE two_factor_challenges SET sms_code_hash = NULL WHERE user_id = $1 AND used_at IS NULL', [
    userId,
  ]);
  await removeEmptySettings(tx, userId);
}

/** The phone number, opened from its sealed form: only to send it a code. */
export function openSmsPhone(settings: TwoFactorSettings, keyring: MasterKeyring): string {
  if (!settings.smsPhoneSealed) throw new Error('no phone number is stored for this account');
  return keyring.decryptText(settings.smsPhoneSealed, smsPhoneContext(settings.userId));
}

/** A settings row left with no factor, set up or pending, says nothing: removed. */
async function removeEmptySettings(tx: Queryable, userId: string): Promise<void> {
  await tx.query(
    `DELETE FROM user_two_factor
     WHERE user_id = $1 AND totp_secret_sealed IS NULL AND NOT email_codes_enabled AND sms_phone_sealed IS NULL`,
    [userId],
  );
}

function smsAlreadyEnabled(): TollgateError {
  return new TollgateError('two_factor_already_enabled', 'a phone number is already set up for SMS codes', {
    hint: 'turn SMS codes off first (DELETE /v1/me/2fa/sms, tollgate 2fa disable --method sms) to use another number',
  });
}

function alreadyEnabled(): TollgateError {
  return new TollgateError('two_factor_already_enabled', 'an authenticator app is already set up for this account', {
    hint: 'turn two-factor authentication off first (DELETE /v1/me/2fa, tollgate 2fa disable) to set up another app',
  });
}
