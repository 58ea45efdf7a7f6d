import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../storage/database.js';

/**
 * Single-use tokens sent by email: verifying an address, resetting a password, confirming a new
 * address. 32 random bytes (base64url) behind a prefix naming the purpose, so a token pasted into the
 * wrong place is recognisable and refused; only the SHA-256 of the whole token is stored.
 */
export type AccountTokenPurpose = 'verify_email' | 'reset_password' | 'change_email';

const prefixes: Record<AccountTokenPurpose, string> = {
  verify_email: 'tgv_',
  reset_password: 'tgp_',
  change_email: 'tge_',
};

/**
 * Milliseconds a token works for. A reset token grants the account, so it lives an hour (OWASP's
 * Forgot Password Cheat Sheet asks for a short expiry); the others only prove an inbox is reachable.
 */
export const accountTokenLifetimeMs: Record<AccountTokenPurpose, number> = {
  verify_email: 24 * 60 * 60 * 1000,
  reset_password: 60 * 60 * 1000,
  change_email: 24 * 60 * 60 * 1000,
};

const tokenBytes = 32;
/** The prefix, then 43 base64url characters for 32 bytes. */
const tokenPattern = /^tg[vpe]_[A-Za-z0-9_-]{43}$/;

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export interface IssuedAccountToken {
  /** Goes into the email, never into storage or logs. */
  token: string;
  expiresAt: Date;
}

/**
 * Stores a new token for the user and returns it. Every earlier token of the same purpose for that
 * user is deleted, so only the newest link works: an unused one must stop working, and a used or
 * expired one serves nothing any more. Call inside the transaction that audits the request.
 */
export async function issueAccountToken(
  tx: Queryable,
  options: { userId: string; purpose: AccountTokenPurpose; newEmail?: string; now?: Date },
): Promise<IssuedAccountToken> {
  const now = options.now ?? new Date();
  const expiresAt = new Date(now.getTime() + accountTokenLifetimeMs[options.purpose]);
  const token = `${prefixes[options.purpose]}${randomBytes(tokenBytes).toString('base64url')}`;
  await tx.query('DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2', [options.userId, options.purpose]);
  await tx.query(
    `INSERT INTO account_tokens (token_sha256, user_id, purpose, new_email, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [sha256(token), options.userId, options.purpose, options.newEmail ?? null, now, expiresAt],
  );
  return { token, expiresAt };
}

export interface AccountTokenGrant {
  userId: string;
  /** The address a change_email token switches to; null for the other purposes. */
  newEmail: string | null;
}

function wellFormed(token: string, purpose: AccountTokenPurpose): boolean {
  return typeof token === 'string' && tokenPattern.test(token) && token.startsWith(prefixes[purpose]);
}

/**
 * What an unused, unexpired token of this purpose grants, without using it up (to check a new
 * password against the policy before spending a reset token on it). Undefined otherwise.
 */
export async function findAccountToken(
  db: Queryable,
  options: { token: string; purpose: AccountTokenPurpose; now?: Date },
): Promise<AccountTokenGrant | undefined> {
  if (!wellFormed(options.token, options.purpose)) return undefined;
  const result = await db.query<{ user_id: string; new_email: string | null }>(
    `SELECT t.user_id, t.new_email FROM account_tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_sha256 = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3
       AND u.deleted_at IS NULL`,
    [sha256(options.token), options.purpose, options.now ?? new Date()],
  );
  const row = result.rows[0];
  return row ? { userId: row.user_id, newEmail: row.new_email } : undefined;
}

/**
 * Uses a token up and returns what it grants; undefined when it is unknown, of another purpose,
 * expired, already used, or its account is gone. One UPDATE decides, so of two requests racing with
 * the same token exactly one wins. Call inside the transaction that applies and audits the change.
 */
export async function useAccountToken(
  tx: Queryable,
  options: { token: string; purpose: AccountTokenPurpose; now?: Date },
): Promise<AccountTokenGrant | undefined> {
  if (!wellFormed(options.token, options.purpose)) return undefined;
  const result = await tx.query<{ user_id: string; new_email: string | null }>(
    `UPDATE account_tokens t SET used_at = $3
     FROM users u
     WHERE t.token_sha256 = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3
       AND u.id = t.user_id AND u.deleted_at IS NULL
     RETURNING t.user_id, t.new_email`,
    [sha256(options.token), options.purpose, options.now ?? new Date()],
  );
  const row = result.rows[0];
  return row ? { userId: row.user_id, newEmail: row.new_email } : undefined;
}

/**
 * Deletes the user's unused tokens of these purposes: after a password reset or an email change, a
 * link mailed earlier (possibly to the old address) must stop working.
 */
export async function revokeAccountTokens(
  tx: Queryable,
  options: { userId: string; purposes: readonly AccountTokenPurpose[] },
): Promise<void> {
  await tx.query('DELETE FROM account_tokens WHERE user_id = $1 AND purpose = ANY($2::text[]) AND used_at IS NULL', [
    options.userId,
    [...options.purposes],
  ]);
}
