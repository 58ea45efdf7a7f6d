import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';

/**
 * Personal access tokens: long-lived bearer tokens a person makes for scripts and CI, sent where a
 * session's access token goes (`Authorization: Bearer tgpat_...`). They act as their owner, but
 * cannot manage credentials: making tokens, deleting the account and changing the password, email
 * or second factors need a session (authenticate.ts, `session_required`).
 *
 * The prefix is `tgpat_`, not `tgp_`: `tgp_` already names password-reset tokens (account-tokens.ts),
 * and a prefix is only useful (to secret scanners, to `tollgate auth status`, to a person reading a
 * leaked file) when it names one kind of token.
 */
export const personalAccessTokenPrefix = 'tgpat_';

/** `tgpat_`, then 32 random bytes as 43 base64url characters. */
const tokenPattern = /^tgpat_[A-Za-z0-9_-]{43}$/;

/** Characters of the secret kept in the display prefix: 36 of its 256 bits. */
const displayedSecretChars = 6;

/** Live (unrevoked, unexpired) tokens a person may hold at once. */
export const maxLiveTokensPerUser = 50;

/** Days a token lives when the caller says nothing (`expires_in_days` absent); `null` means never. */
export const defaultTokenLifetimeDays = 90;
export const maxTokenLifetimeDays = 365;

/** `last_used_at` is written at most this often per token, rather than on every request. */
export const lastUseResolutionMs = 60_000;

const dayMs = 24 * 60 * 60 * 1000;

const sha256 = (value: string) => createHash('sha256').update(value).digest();

export interface PersonalAccessTokenSummary {
  id: string;
  name: string;
  /** `tgpat_` and the first characters of the secret. */
  displayPrefix: string;
  createdAt: Date;
  /** Null: never expires. */
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
  revokedAt: Date | null;
}

interface SummaryRow {
  id: string;
  name: string;
  display_prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  last_used_ip: string | null;
  revoked_at: Date | null;
}

const summaryColumns =
  'id, name, display_prefix, created_at, expires_at, last_used_at, host(last_used_ip) AS last_used_ip, revoked_at';

function toSummary(row: SummaryRow): PersonalAccessTokenSummary {
  return {
    id: row.id,
    name: row.name,
    displayPrefix: row.display_prefix,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    lastUsedIp: row.last_used_ip,
    revokedAt: row.revoked_at,
  };
}

/** Whether a bearer token has the shape of a personal access token (not whether it works). */
export function isPersonalAccessToken(token: string): boolean {
  return token.startsWith(personalAccessTokenPrefix);
}

/** When a token made now with `expires_in_days` ends: absent means the default, null never. */
export function tokenExpiry(expiresInDays: number | null | undefined, now: Date): Date | null {
  if (expiresInDays === null) return null;
  return new Date(now.getTime() + (expiresInDays ?? defaultTokenLifetimeDays) * dayMs);
}

export interface CreatedPersonalAccessToken {
  /** Shown to its owner this once; only its SHA-256 is stored. */
  token: string;
  summary: PersonalAccessTokenSummary;
}

/**
 * Makes a token for the user. Refused with `token_limit_reached` when they already hold
 * `maxLiveTokensPerUser` live ones. The user's row is locked first, so two requests racing cannot
 * both pass the count. Call inside the transaction that audits the creation.
 */
export async function createPersonalAccessToken(
  tx: Queryable,
  options: { userId: string; name: string; expiresAt: Date | null; now?: Date },
): Promise<CreatedPersonalAccessToken> {
  const now = options.now ?? new Date();
  const user = await tx.query('SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [options.userId]);
  if (user.rowCount === 0) throw new TollgateError('not_found', 'no such account');
  const live = await tx.query<{ count: string }>(
    `SELECT count(*) AS count FROM personal_access_tokens
     WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
    [options.userId, now],
  );
  if (Number(live.rows[0]?.count ?? 0) >= maxLiveTokensPerUser) {
    throw new TollgateError(
      'token_limit_reached',
      `you already have ${maxLiveTokensPerUser} live personal access tokens`,
      {
        details: { limit: maxLiveTokensPerUser },
        hint: 'revoke tokens you no longer use (tollgate tokens list, tollgate tokens revoke <id>)',
      },
    );
  }
  const secret = randomBytes(32).toString('base64url');
  const token = `${personalAccessTokenPrefix}${secret}`;
  const inserted = await tx.query<SummaryRow>(
    `INSERT INTO personal_access_tokens (user_id, name, token_sha256, display_prefix, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${summaryColumns}`,
    [
      options.userId,
      options.name,
      sha256(token),
      `${personalAccessTokenPrefix}${secret.slice(0, displayedSecretChars)}`,
      now,
      options.expiresAt,
    ],
  );
  const row = inserted.rows[0];
  if (!row) throw new Error('token insert returned no row');
  return { token, summary: toSummary(row) };
}

/** The user's tokens that are not revoked, the expired ones included (marked by `expiresAt`), newest first. */
export async function listPersonalAccessTokens(db: Queryable, userId: string): Promise<PersonalAccessTokenSummary[]> {
  const result = await db.query<SummaryRow>(
    `SELECT ${summaryColumns} FROM personal_access_tokens
     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id`,
    [userId],
  );
  return result.rows.map(toSummary);
}

/**
 * Revokes one of the user's tokens; undefined when it is not theirs, does not exist or was already
 * revoked (one answer for all, so ids of other people's tokens reveal nothing). The next request with
 * it is refused: every request looks the token up.
 */
export async function revokePersonalAccessToken(
  tx: Queryable,
  options: { userId: string; tokenId: string; now?: Date },
): Promise<PersonalAccessTokenSummary | undefined> {
  const result = await tx.query<SummaryRow>(
    `UPDATE personal_access_tokens SET revoked_at = $3
     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING ${summaryColumns}`,
    [options.tokenId, options.userId, options.now ?? new Date()],
  );
  const row = result.rows[0];
  return row ? toSummary(row) : undefined;
}

export type TokenCheck =
  | { ok: true; tokenId: string; userId: string }
  | { ok: false; reason: 'unknown' | 'revoked' | 'expired'; expiresAt?: Date };

/**
 * Who a presented token acts for, found by the SHA-256 of the whole token: the secret is never
 * compared byte by byte, so the lookup's timing tells nothing about it. Records the use (time and
 * address) when the last one recorded is a minute old or more, so a busy CI job costs one write a
 * minute, not one per request.
 */
export async function usePersonalAccessToken(
  db: Queryable,
  options: { token: string; ip?: string | undefined; now?: Date },
): Promise<TokenCheck> {
  if (!tokenPattern.test(options.token)) return { ok: false, reason: 'unknown' };
  const now = options.now ?? new Date();
  const found = await db.query<{
    id: string;
    user_id: string;
    expires_at: Date | null;
    revoked_at: Date | null;
    last_used_at: Date | null;
  }>(
    `SELECT t.id, t.user_id, t.expires_at, t.revoked_at, t.last_used_at
     FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
     WHERE t.token_sha256 = $1 AND u.deleted_at IS NULL`,
    [sha256(options.token)],
  );
  const row = found.rows[0];
  if (!row) return { ok: false, reason: 'unknown' };
  if (row.revoked_at) return { ok: false, reason: 'revoked' };
  if (row.expires_at && row.expires_at.getTime() <= now.getTime()) {
    return { ok: false, reason: 'expired', expiresAt: row.expires_at };
  }
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() >= lastUseResolutionMs) {
    // The same condition in SQL: of several requests arriving together, one writes.
    await db.query(
      `UPDATE personal_access_tokens SET last_used_at = $2, last_used_ip = $3
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $4)`,
      // An address from a forwarded header may not be one; the time is still worth keeping.
      [row.id, now, options.ip && isIP(options.ip) ? options.ip : null, new Date(now.getTime() - lastUseResolutionMs)],
    );
  }
  return { ok: true, tokenId: row.id, userId: row.user_id };
}
