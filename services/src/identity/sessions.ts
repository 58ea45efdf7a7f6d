import { createHash, randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { TollgateError } from '../errors/tollgate-error.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import type { Database, Queryable } from '../storage/database.js';

/** Access tokens live 15 minutes; a session (its refresh-token family) 30 days at most. */
export const accessTokenTtlSeconds = 15 * 60;
export const sessionLifetimeMs = 30 * 24 * 60 * 60 * 1000;

const issuer = 'tollgate';
const audience = 'tollgate-api';
const refreshTokenPrefix = 'tgr_';

export interface SessionTokens {
  sessionId: string;
  accessToken: string;
  /** Seconds until the access token expires. */
  accessTokenExpiresIn: number;
  /** Shown to the client once; only its SHA-256 is stored. */
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

function newRefreshToken(): string {
  return `${refreshTokenPrefix}${randomBytes(32).toString('base64url')}`;
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

/** Opens a session for a user who has just proven who they are. Call inside the login's transaction. */
export async function createSession(
  tx: Queryable,
  options: { userId: string; client: ClientInfo; signingKey: Buffer; now?: Date },
): Promise<SessionTokens> {
  const now = options.now ?? new Date();
  const expiresAt = new Date(now.getTime() + sessionLifetimeMs);
  const session = await tx.query<{ id: string }>(
    `INSERT INTO sessions (user_id, created_at, expires_at, ip, user_agent)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [options.userId, now, expiresAt, options.client.ip ?? null, options.client.userAgent ?? null],
  );
  const sessionId = session.rows[0]?.id ?? '';
  const refreshToken = newRefreshToken();
  await tx.query('INSERT INTO refresh_tokens (token_sha256, session_id, issued_at) VALUES ($1, $2, $3)', [
    sha256(refreshToken),
    sessionId,
    now,
  ]);
  return tokensFor(options.userId, sessionId, refreshToken, expiresAt, options.signingKey);
}

interface RefreshRow {
  session_id: string;
  user_id: string;
  rotated_at: Date | null;
  expires_at: Date;
  revoked_at: Date | null;
}

export type RefreshOutcome =
  | { ok: true; userId: string; tokens: SessionTokens }
  /** `reused`: the token had already been exchanged, so its whole session was revoked just now. */
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'reused'; userId?: string; sessionId?: string };

/**
 * Exchanges a refresh token for a new pair (rotation). Presenting a token that was already
 * exchanged means it leaked or was replayed: the whole session (the token family) is revoked, so
 * neither the thief's nor the owner's tokens work any more (OAuth 2.0 Security BCP, section 4.14).
 */
export async function refreshSession(
  database: Database,
  options: { refreshToken: string; signingKey: Buffer; now?: Date },
): Promise<RefreshOutcome> {
  const now = options.now ?? new Date();
  if (!options.refreshToken.startsWith(refreshTokenPrefix)) return { ok: false, reason: 'unknown' };
  return database.transaction(async (tx) => {
    const found = await tx.query<RefreshRow>(
      `SELECT r.session_id, s.user_id, r.rotated_at, s.expires_at, s.revoked_at
       FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
       WHERE r.token_sha256 = $1
       FOR UPDATE OF r, s`,
      [sha256(options.refreshToken)],
    );
    const row = found.rows[0];
    if (!row) return { ok: false, reason: 'unknown' } as const;
    const ids = { userId: row.user_id, sessionId: row.session_id };
    if (row.revoked_at) return { ok: false, reason: 'revoked', ...ids } as const;
    if (row.rotated_at) {
      await tx.query(`UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh_token_reused' WHERE id = $1`, [
        row.session_id,
        now,
      ]);
      return { ok: false, reason: 'reused', ...ids } as const;
    }
    if (row.expires_at.getTime() <= now.getTime()) return { ok: false, reason: 'expired', ...ids } as const;
    await tx.query('UPDATE refresh_tokens SET rotated_at = $2 WHERE token_sha256 = $1', [
      sha256(options.refreshToken),
      now,
    ]);
    const refreshToken = newRefreshToken();
    await tx.query('INSERT INTO refresh_tokens (token_sha256, session_id, issued_at) VALUES ($1, $2, $3)', [
      sha256(refreshToken),
      row.session_id,
      now,
    ]);
    await tx.query('UPDATE sessions SET last_refreshed_at = $2 WHERE id = $1', [row.session_id, now]);
    return {
      ok: true,
      userId: row.user_id,
      tokens: tokensFor(row.user_id, row.session_id, refreshToken, row.expires_at, options.signingKey),
    } as const;
  });
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

/** Revokes one of the user's sessions; false when it is not theirs or already revoked. */
export async function revokeSession(
  tx: Queryable,
  options: { userId: string; sessionId: string; reason: 'logout' | 'revoked'; now?: Date },
): Promise<boolean> {
  const result = await tx.query(
    `UPDATE sessions SET revoked_at = $3, revoked_reason = $4
     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
    [options.sessionId, options.userId, options.now ?? new Date(), options.reason],
  );
  return result.rowCount > 0;
}

/** Logs out everywhere: revokes every live session of the user; returns how many. */
export async function revokeAllSessions(tx: Queryable, options: { userId: string; now?: Date }): Promise<number> {
  const result = await tx.query(
    `UPDATE sessions SET revoked_at = $2, revoked_reason = 'logout_everywhere'
     WHERE user_id = $1 AND revoked_at IS NULL`,
    [options.userId, options.now ?? new Date()],
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
