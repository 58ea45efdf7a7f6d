import { createHash, randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { TollgateError } from '../errors/tollgate-error.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import type { Database, Queryable } from '../storage/database.js';
import type { RefreshTokenStore } from './refresh-token-store.js';

/** Access tokens live 15 minutes; a session (its refresh-token family) 30 days at most. */
export const accessTokenTtlSeconds = 15 * 60;
export const sessionLifetimeMs = 30 * 24 * 60 * 60 * 1000;

const issuer = 'tollgate';
const audience = 'tollgate-api';
const refreshTokenPrefix = 'tgr_';
/** `tgr_`, the session id as 32 hex digits, `_`, 32 random bytes in base64url. */
const refreshTokenPattern = /^tgr_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$/;

export interface SessionTokens {
  sessionId: string;
  accessToken: string;
  /** Seconds until the access token expires. */
  accessTokenExpiresIn: number;
  /** Shown to the client once; only its SHA-256 is stored (refresh-token-store.ts). */
  refreshToken: string;
  sessionExpiresAt: Date;
}

export interface ClientInfo {
  ip?: string | undefined;
  userAgent?: string | undefined;
}

export interface AccessClaims {
  userId: string;
  sessionId: string;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();

/**
 * A refresh token names its session, so a store can find the token's family without an index:
 * Redis keeps a session's tokens under the session's hash tag (redis-refresh-token-store.ts). The
 * session id is no secret (the access token carries it too); the 32 random bytes are.
 */
function newRefreshToken(sessionId: string): string {
  return `${refreshTokenPrefix}${sessionId.replaceAll('-', '')}_${randomBytes(32).toString('base64url')}`;
}

/** The session a refresh token names, or undefined when it is not one of ours. */
function sessionOfRefreshToken(token: string): string | undefined {
  const hex = refreshTokenPattern.exec(token)?.[1];
  if (hex === undefined) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The HS256 key of access tokens, derived from the master key (rotating it signs everyone out). */
export function accessTokenSigningKey(keyring: MasterKeyring): Buffer {
  return keyring.deriveKey('access-token-signing');
}

/** A short-lived HS256 JWT naming the user (`sub`) and the session (`sid`). */
export function signAccessToken(claims: AccessClaims, signingKey: Buffer): string {
  return jwt.sign({ sid: claims.sessionId }, signingKey, {
    algorithm: 'HS256',
    subject: claims.userId,
    issuer,
    audience,
    expiresIn: accessTokenTtlSeconds,
    jwtid: randomUUID(),
  });
}

/** Checks signature, algorithm, issuer, audience and expiry; throws `unauthorized` otherwise. */
export function verifyAccessToken(token: string, signingKey: Buffer): AccessClaims {
  try {
    const payload = jwt.verify(token, signingKey, { algorithms: ['HS256'], issuer, audience });
    if (typeof payload === 'string' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') {
      throw new Error('malformed claims');
    }
    return { userId: payload.sub, sessionId: payload.sid };
  } catch (error) {
    const expired = (error as Error).name === 'TokenExpiredError';
    throw new TollgateError('unauthorized', expired ? 'the access token has expired' : 'the access token is invalid', {
      hint: expired ? 'refresh it with the refresh token, or log in again' : 'log in again',
    });
  }
}

function tokensFor(
  userId: string,
  sessionId: string,
  refreshToken: string,
  expiresAt: Date,
  key: Buffer,
): SessionTokens {
  return {
    sessionId,
    accessToken: signAccessToken({ userId, sessionId }, key),
    accessTokenExpiresIn: accessTokenTtlSeconds,
    refreshToken,
    sessionExpiresAt: expiresAt,
  };
}

/**
 * Opens a session for a user who has just proven who they are. Call inside the login's transaction.
 * The first refresh token is stored once the session row exists; with Redis that write is not part
 * of the transaction (see RefreshTokenStore.issue), and when Redis cannot be reached this throws
 * `session_store_unavailable`, so the login rolls back rather than hand out a token that cannot work.
 */
export async function createSession(
  tx: Queryable,
  options: { userId: string; client: ClientInfo; signingKey: Buffer; refreshTokens: RefreshTokenStore; now?: Date },
): Promise<SessionTokens> {
  const now = options.now ?? new Date();
  const expiresAt = new Date(now.getTime() + sessionLifetimeMs);
  const session = await tx.query<{ id: string }>(
    `INSERT INTO sessions (user_id, created_at, expires_at, ip, user_agent)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [options.userId, now, expiresAt, options.client.ip ?? null, options.client.userAgent ?? null],
  );
  const sessionId = session.rows[0]?.id;
  if (sessionId === undefined) throw new Error('session insert returned no row');
  const refreshToken = newRefreshToken(sessionId);
  await options.refreshTokens.issue(tx, { sessionId, tokenSha256: sha256(refreshToken), expiresAt, now });
  return tokensFor(options.userId, sessionId, refreshToken, expiresAt, options.signingKey);
}

export type RefreshOutcome =
  | { ok: true; userId: string; tokens: SessionTokens }
  /** `reused`: the token had already been exchanged, so its whole session was revoked just now. */
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'reused'; userId?: string; sessionId?: string };

/**
 * Exchanges a refresh token for a new pair (rotation). Presenting a token that was already
 * exchanged means it leaked or was replayed: the whole session (the token family) is revoked, so
 * neither the thief's nor the owner's tokens work any more (OAuth 2.0 Security BCP, section 4.14).
 *
 * The session is checked in PostgreSQL first (a revoked or expired one is refused without touching
 * the store), then the store rotates the token atomically. Throws `session_store_unavailable` when
 * the store cannot be reached: no token is accepted without its check.
 */
export async function refreshSession(
  database: Database,
  options: { refreshToken: string; signingKey: Buffer; refreshTokens: RefreshTokenStore; now?: Date },
): Promise<RefreshOutcome> {
  const now = options.now ?? new Date();
  const sessionId = sessionOfRefreshToken(options.refreshToken);
  if (sessionId === undefined) return { ok: false, reason: 'unknown' };
  const found = await database.query<{ user_id: string; expires_at: Date; revoked_at: Date | null }>(
    'SELECT user_id, expires_at, revoked_at FROM sessions WHERE id = $1',
    [sessionId],
  );
  const session = found.rows[0];
  if (!session) return { ok: false, reason: 'unknown' };
  const ids = { userId: session.user_id, sessionId };
  if (session.revoked_at) return { ok: false, reason: 'revoked', ...ids };
  if (session.expires_at.getTime() <= now.getTime()) return { ok: false, reason: 'expired', ...ids };

  const refreshToken = newRefreshToken(sessionId);
  const verdict = await options.refreshTokens.rotate({
    sessionId,
    presentedSha256: sha256(options.refreshToken),
    nextSha256: sha256(refreshToken),
    expiresAt: session.expires_at,
    now,
  });
  if (verdict === 'unknown') {
    // A twin request may have found reuse and forgotten the family between the check above and the
    // rotation: then the honest answer is that the session is revoked.
    const revoked = await database.query('SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL', [
      sessionId,
    ]);
    return revoked.rowCount > 0 ? { ok: false, reason: 'revoked', ...ids } : { ok: false, reason: 'unknown' };
  }
  if (verdict === 'reused') {
    // Revoked first, and committed, then forgotten: a twin request that finds the family gone
    // already sees the session revoked.
    await database.query(
      `UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_token_reused'
       WHERE id = $1 AND revoked_at IS NULL`,
      [sessionId, now],
    );
    await options.refreshTokens.forget(database, [sessionId]);
    return { ok: false, reason: 'reused', ...ids };
  }
  const touched = await database.query(
    'UPDATE sessions SET last_refreshed_at = $2 WHERE id = $1 AND revoked_at IS NULL',
    [sessionId, now],
  );
  // Revoked while this rotation ran (a logout, or the other half of a reuse race): the new token
  // may have landed after the revocation forgot the family, so forget it again. The answer stays a
  // success, as the winner of a race gets one, but the session is over: its access token is
  // refused at the first request and the new refresh token finds the session revoked.
  if (touched.rowCount === 0) await options.refreshTokens.forget(database, [sessionId]);
  return {
    ok: true,
    userId: session.user_id,
    tokens: tokensFor(session.user_id, sessionId, refreshToken, session.expires_at, options.signingKey),
  };
}

export interface SessionSummary {
  id: string;
  createdAt: Date;
  lastRefreshedAt: Date | null;
  expiresAt: Date;
  ip: string | null;
  userAgent: string | null;
}

/** The user's sessions that can still be refreshed, newest first. */
export async function listActiveSessions(db: Queryable, userId: string, now = new Date()): Promise<SessionSummary[]> {
  const result = await db.query<{
    id: string;
    created_at: Date;
    last_refreshed_at: Date | null;
    expires_at: Date;
    ip: string | null;
    user_agent: string | null;
  }>(
    `SELECT id, created_at, last_refreshed_at, expires_at, host(ip) AS ip, user_agent FROM sessions
     WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC`,
    [userId, now],
  );
  return result.rows.map((row) => ({
    id: row.id,
    createdAt: row.created_at,
    lastRefreshedAt: row.last_refreshed_at,
    expiresAt: row.expires_at,
    ip: row.ip,
    userAgent: row.user_agent,
  }));
}

/**
 * Revokes one of the user's sessions and forgets its refresh tokens; false when it is not theirs or
 * already revoked. With Redis the tokens are deleted at once, before `tx` commits: if it rolls
 * back, the session stays open but cannot be refreshed (the safe way round).
 */
export async function revokeSession(
  tx: Queryable,
  options: {
    userId: string;
    sessionId: string;
    reason: 'logout' | 'revoked';
    refreshTokens: RefreshTokenStore;
    now?: Date;
  },
): Promise<boolean> {
  const result = await tx.query(
    `UPDATE sessions SET revoked_at = $3, revoked_reason = $4
     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
    [options.sessionId, options.userId, options.now ?? new Date(), options.reason],
  );
  if (result.rowCount === 0) return false;
  await options.refreshTokens.forget(tx, [options.sessionId]);
  return true;
}

/** Logs out everywhere: revokes every live session of the user and forgets their refresh tokens; returns how many. */
export async function revokeAllSessions(
  tx: Queryable,
  options: { userId: string; refreshTokens: RefreshTokenStore; now?: Date },
): Promise<number> {
  const result = await tx.query<{ id: string }>(
    `UPDATE sessions SET revoked_at = $2, revoked_reason = 'logout_everywhere'
     WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`,
    [options.userId, options.now ?? new Date()],
  );
  await options.refreshTokens.forget(
    tx,
    result.rows.map((row) => row.id),
  );
  return result.rowCount;
}

/** Whether an access token's session still stands (logout and revocation take effect at once). */
export async function sessionIsLive(db: Queryable, sessionId: string, now = new Date()): Promise<boolean> {
  const result = await db.query('SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2', [
    sessionId,
    now,
  ]);
  return result.rowCount > 0;
}
