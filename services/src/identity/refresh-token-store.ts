import type { Queryable } from '../storage/database.js';

export type RefreshTokenDriver = 'postgres' | 'redis' | 'redis-cluster';

/**
 * What a rotation found: `rotated` (the presented token was live; it is now spent and the next one
 * stored), `reused` (it had been exchanged before: leaked or replayed), `unknown` (not a token of
 * that session, or forgotten).
 */
export type RotationVerdict = 'rotated' | 'reused' | 'unknown';

export interface IssuedRefreshToken {
  sessionId: string;
  /** SHA-256 of the token; the token itself is never stored. */
  tokenSha256: Buffer;
  /** The session's end: the token is worthless after it, so a store may forget it then. */
  expiresAt: Date;
  now: Date;
}

export interface RefreshTokenRotation {
  sessionId: string;
  presentedSha256: Buffer;
  nextSha256: Buffer;
  expiresAt: Date;
  now: Date;
}

/**
 * Where the hashes of refresh tokens and their rotation state live: Redis when configured, else
 * PostgreSQL (decision 0010). Sessions themselves (who, when, revoked or not) are always in
 * PostgreSQL and are checked on every refresh, so a store never decides alone that a token is good.
 */
export interface RefreshTokenStore {
  readonly driver: RefreshTokenDriver;
  /**
   * Stores the first token of a session that `tx` has just inserted (a login). The Redis store
   * writes outside that transaction, at once: if it then rolls back, the key names a session that
   * does not exist, which no refresh accepts, and it expires with the session.
   * Throws `session_store_unavailable` when the store cannot be reached.
   */
  issue(tx: Queryable, token: IssuedRefreshToken): Promise<void>;
  /**
   * In one atomic step: when the presented token belongs to the session and was never exchanged,
   * marks it exchanged and stores the next one. Of two calls with the same token, exactly one gets
   * `rotated` and the other `reused`. Throws `session_store_unavailable` when the store cannot be
   * reached: a token is never accepted without this check.
   */
  rotate(rotation: RefreshTokenRotation): Promise<RotationVerdict>;
  /**
   * Forgets every token of these sessions (logout, revocation, reuse, account deletion). Best effort
   * outside the database: a store that cannot be reached logs it and the keys expire with their
   * session; the revocation in PostgreSQL is what makes the tokens unusable.
   */
  forget(tx: Queryable, sessionIds: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
