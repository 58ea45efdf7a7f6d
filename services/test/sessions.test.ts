import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TollgateError } from '../src/errors/tollgate-error.js';
import {
  createSession,
  listActiveSessions,
  refreshSession,
  revokeAllSessions,
  revokeSession,
  sessionIsLive,
  sessionLifetimeMs,
  signAccessToken,
  verifyAccessToken,
} from '../src/identity/sessions.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { expectedDatabaseDriver, openTestDatabase } from './support/backends.js';

const key = randomBytes(32);
let database: Database;
let dispose: () => Promise<void>;

beforeAll(async () => {
  const opened = await openTestDatabase();
  database = opened.value;
  dispose = opened.dispose;
  await runMigrations(database);
});
afterAll(() => dispose());

async function newUser(): Promise<string> {
  const result = await database.query<{ id: string }>(`INSERT INTO users (email) VALUES ($1) RETURNING id`, [
    `${randomBytes(6).toString('hex')}@example.com`,
  ]);
  return result.rows[0]?.id ?? '';
}

const login = (userId: string, now?: Date) =>
  database.transaction((tx) =>
    createSession(tx, {
      userId,
      client: { ip: '203.0.113.7', userAgent: 'tollgate-cli/0.1' },
      signingKey: key,
      ...(now ? { now } : {}),
    }),
  );

function unauthorized(fn: () => unknown): TollgateError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TollgateError) return error;
    throw error;
  }
  throw new Error('expected unauthorized');
}

describe(`sessions (${expectedDatabaseDriver})`, () => {
  it('issue a 15-minute access token naming the user and the session', async () => {
    const userId = await newUser();
    const tokens = await login(userId);
    expect(verifyAccessToken(tokens.accessToken, key)).toEqual({ userId, sessionId: tokens.sessionId });
    expect(tokens.accessTokenExpiresIn).toBe(900);
    expect(tokens.refreshToken).toMatch(/^tgr_[A-Za-z0-9_-]{43}$/);
    const stored = await database.query<{ hex: string }>(
      `SELECT encode(token_sha256, 'hex') AS hex FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = $1`,
      [userId],
    );
    expect(stored.rows).toHaveLength(1);
    expect(stored.rows[0]?.hex).not.toContain(tokens.refreshToken);
  });

  it('rotate the refresh token on every use', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const second = await refreshSession(database, { refreshToken: first.refreshToken, signingKey: key });
    expect(second.ok).toBe(true);
    if (!second.ok) return;
    expect(second.tokens.refreshToken).not.toBe(first.refreshToken);
    expect(second.tokens.sessionId).toBe(first.sessionId);
    const third = await refreshSession(database, { refreshToken: second.tokens.refreshToken, signingKey: key });
    expect(third.ok).toBe(true);
  });

  it('revoke the whole family when a rotated refresh token is presented again', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const second = await refreshSession(database, { refreshToken: first.refreshToken, signingKey: key });
    if (!second.ok) throw new Error('refresh failed');
    const replay = await refreshSession(database, { refreshToken: first.refreshToken, signingKey: key });
    expect(replay).toEqual({ ok: false, reason: 'reused', userId, sessionId: first.sessionId });
    // The legitimate newest token dies with the family, and so does the session's access.
    const after = await refreshSession(database, { refreshToken: second.tokens.refreshToken, signingKey: key });
    expect(after).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await sessionIsLive(database, first.sessionId)).toBe(false);
  });

  it('let exactly one of two concurrent refreshes with the same token win', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const outcomes = await Promise.all([
      refreshSession(database, { refreshToken: first.refreshToken, signingKey: key }),
      refreshSession(database, { refreshToken: first.refreshToken, signingKey: key }),
    ]);
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1);
    expect(outcomes.find((outcome) => !outcome.ok)).toMatchObject({ reason: 'reused' });
  });

  it('refuse unknown and expired refresh tokens', async () => {
    expect(await refreshSession(database, { refreshToken: 'tgr_nope', signingKey: key })).toEqual({
      ok: false,
      reason: 'unknown',
    });
    expect(await refreshSession(database, { refreshToken: 'not-even-ours', signingKey: key })).toMatchObject({
      reason: 'unknown',
    });
    const userId = await newUser();
    const old = await login(userId, new Date(Date.now() - sessionLifetimeMs - 1_000));
    expect(await refreshSession(database, { refreshToken: old.refreshToken, signingKey: key })).toMatchObject({
      ok: false,
      reason: 'expired',
    });
  });

  it('list, revoke one, and revoke all of a user’s sessions', async () => {
    const userId = await newUser();
    const a = await login(userId);
    const b = await login(userId);
    const c = await login(userId);
    const listed = await listActiveSessions(database, userId);
    expect(listed.map((session) => session.id).sort()).toEqual([a.sessionId, b.sessionId, c.sessionId].sort());
    expect(listed[0]).toMatchObject({ ip: '203.0.113.7', userAgent: 'tollgate-cli/0.1' });

    const stranger = await newUser();
    expect(await revokeSession(database, { userId: stranger, sessionId: a.sessionId, reason: 'revoked' })).toBe(false);
    expect(await revokeSession(database, { userId, sessionId: a.sessionId, reason: 'logout' })).toBe(true);
    expect(await sessionIsLive(database, a.sessionId)).toBe(false);
    expect(await refreshSession(database, { refreshToken: a.refreshToken, signingKey: key })).toMatchObject({
      reason: 'revoked',
    });

    expect(await revokeAllSessions(database, { userId })).toBe(2);
    expect(await listActiveSessions(database, userId)).toEqual([]);
  });
});

describe('access tokens', () => {
  const claims = { userId: '00000000-0000-4000-8000-000000000001', sessionId: '00000000-0000-4000-8000-000000000002' };

  it('refuse a token signed with another key', () => {
    const token = signAccessToken(claims, randomBytes(32));
    expect(unauthorized(() => verifyAccessToken(token, key)).message).toBe('the access token is invalid');
  });

  it('refuse an unsigned token (alg none) and a tampered payload', () => {
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: claims.userId, sid: claims.sessionId, iss: 'tollgate', aud: 'tollgate-api' }),
    ).toString('base64url')}.`;
    expect(unauthorized(() => verifyAccessToken(none, key)).code).toBe('unauthorized');
    const [header, , signature] = signAccessToken(claims, key).split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ sub: 'someone-else', sid: claims.sessionId })).toString('base64url')}.${signature}`;
    expect(unauthorized(() => verifyAccessToken(forged, key)).code).toBe('unauthorized');
  });

  it('refuse an expired token with a hint to refresh', () => {
    const expired = jwt.sign({ sid: claims.sessionId, exp: Math.floor(Date.now() / 1000) - 10 }, key, {
      algorithm: 'HS256',
      subject: claims.userId,
      issuer: 'tollgate',
      audience: 'tollgate-api',
    });
    const error = unauthorized(() => verifyAccessToken(expired, key));
    expect(error.message).toBe('the access token has expired');
    expect(error.hint).toContain('refresh');
  });
});
