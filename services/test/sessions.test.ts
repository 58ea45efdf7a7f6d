import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../src/api/create-api-app.js';
import { createMemoryCounterStore } from '../src/counters/memory-counter-store.js';
import { TollgateError } from '../src/errors/tollgate-error.js';
import { listen } from '../src/http/http-server.js';
import {
  accessTokenSigningKey,
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
import { createKeyring } from '../src/secrets/master-keyring.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import {
  expectedDatabaseDriver,
  expectedRefreshTokenDriver,
  openTestDatabase,
  openTestRefreshTokens,
  silentLogger,
  type TestRefreshTokens,
  testRedisUrl,
} from './support/backends.js';
import { createTestMailer } from './support/mail.js';
import { dumpRedisKeys } from './support/redis-keys.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const key = randomBytes(32);
let database: Database;
let dispose: () => Promise<void>;
let refreshTokens: TestRefreshTokens;

beforeAll(async () => {
  const opened = await openTestDatabase();
  database = opened.value;
  dispose = opened.dispose;
  await runMigrations(database);
  refreshTokens = await openTestRefreshTokens(database);
});
afterAll(async () => {
  await refreshTokens.dispose();
  await dispose();
});

async function newUser(): Promise<string> {
  const result = await database.query<{ id: string }>(`INSERT INTO users (email) VALUES ($1) RETURNING id`, [
    `${randomBytes(6).toString('hex')}@example.com`,
  ]);
  return result.rows[0]?.id ?? '';
}

const login = (userId: string, now?: Date, store = refreshTokens.value) =>
  database.transaction((tx) =>
    createSession(tx, {
      userId,
      client: { ip: '203.0.113.7', userAgent: 'tollgate-cli/0.1' },
      signingKey: key,
      refreshTokens: store,
      ...(now ? { now } : {}),
    }),
  );

const refresh = (refreshToken: string) =>
  refreshSession(database, { refreshToken, signingKey: key, refreshTokens: refreshTokens.value });

const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

/** What is stored for a session's refresh tokens, wherever they live: `refresh_tokens` rows, Redis keys. */
async function storedFor(sessionId: string) {
  const rows = await database.query<{ hex: string; rotated: boolean }>(
    `SELECT encode(token_sha256, 'hex') AS hex, rotated_at IS NOT NULL AS rotated FROM refresh_tokens
     WHERE session_id = $1 ORDER BY issued_at, rotated_at NULLS LAST`,
    [sessionId],
  );
  const keys = testRedisUrl ? await dumpRedisKeys(refreshTokens.keyPrefix, { match: `refresh:{${sessionId}}*` }) : [];
  return { rows: rows.rows, keys };
}

function unauthorized(fn: () => unknown): TollgateError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TollgateError) return error;
    throw error;
  }
  throw new Error('expected unauthorized');
}

describe(`sessions (${expectedDatabaseDriver}, refresh tokens in ${expectedRefreshTokenDriver})`, () => {
  it('issue a 15-minute access token naming the user and the session', async () => {
    const userId = await newUser();
    const tokens = await login(userId);
    expect(verifyAccessToken(tokens.accessToken, key)).toEqual({ userId, sessionId: tokens.sessionId });
    expect(tokens.accessTokenExpiresIn).toBe(900);
    expect(tokens.refreshToken).toMatch(/^tgr_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(tokens.refreshToken.slice(4, 36)).toBe(tokens.sessionId.replaceAll('-', ''));
  });

  it('store only the SHA-256 of a refresh token, in Redis when it is configured, else in PostgreSQL', async () => {
    expect(refreshTokens.value.driver).toBe(expectedRefreshTokenDriver);
    const userId = await newUser();
    const tokens = await login(userId);
    const hash = sha256Hex(tokens.refreshToken);
    const stored = await storedFor(tokens.sessionId);
    if (expectedRefreshTokenDriver === 'postgres') {
      expect(stored.rows).toEqual([{ hex: hash, rotated: false }]);
      return;
    }
    // Redis: the table stays empty; a key per token hash under the session's hash tag, and the family.
    expect(stored.rows).toEqual([]);
    const family = `refresh:{${tokens.sessionId}}`;
    expect(stored.keys.map((entry) => entry.key)).toEqual([family, `${family}:${hash}`]);
    expect(stored.keys[0]?.value).toEqual([hash]);
    expect(stored.keys[1]?.value).toEqual({ session: tokens.sessionId, issued_at: expect.stringMatching(/^\d+$/) });
    // Both expire with the session, 30 days after the login.
    for (const entry of stored.keys) {
      expect(entry.ttlMs).toBeGreaterThan(sessionLifetimeMs - 60_000);
      expect(entry.ttlMs).toBeLessThanOrEqual(sessionLifetimeMs);
    }
    expect(JSON.stringify(stored.keys)).not.toContain(tokens.refreshToken.slice(37));
  });

  it('rotate the refresh token on every use', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const second = await refresh(first.refreshToken);
    expect(second.ok).toBe(true);
    if (!second.ok) return;
    expect(second.tokens.refreshToken).not.toBe(first.refreshToken);
    expect(second.tokens.sessionId).toBe(first.sessionId);
    const third = await refresh(second.tokens.refreshToken);
    expect(third.ok).toBe(true);
    if (!third.ok) return;
    // Exchanged tokens are kept, marked, to recognise their reuse; the newest is live.
    const stored = await storedFor(first.sessionId);
    const hashes = [first.refreshToken, second.tokens.refreshToken, third.tokens.refreshToken].map(sha256Hex);
    if (expectedRefreshTokenDriver === 'postgres') {
      expect(stored.rows).toEqual([
        { hex: hashes[0], rotated: true },
        { hex: hashes[1], rotated: true },
        { hex: hashes[2], rotated: false },
      ]);
    } else {
      const byKey = new Map(stored.keys.map((entry) => [entry.key, entry.value]));
      const family = `refresh:{${first.sessionId}}`;
      expect(byKey.get(family)).toEqual([...hashes].sort());
      expect(byKey.get(`${family}:${hashes[0]}`)).toHaveProperty('rotated_at');
      expect(byKey.get(`${family}:${hashes[1]}`)).toHaveProperty('rotated_at');
      expect(byKey.get(`${family}:${hashes[2]}`)).not.toHaveProperty('rotated_at');
    }
  });

  it('revoke the whole family when a rotated refresh token is presented again', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const second = await refresh(first.refreshToken);
    if (!second.ok) throw new Error('refresh failed');
    const replay = await refresh(first.refreshToken);
    expect(replay).toEqual({ ok: false, reason: 'reused', userId, sessionId: first.sessionId });
    // The legitimate newest token dies with the family, and so does the session's access.
    const after = await refresh(second.tokens.refreshToken);
    expect(after).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await sessionIsLive(database, first.sessionId)).toBe(false);
    expect(await storedFor(first.sessionId)).toEqual({ rows: [], keys: [] });
  });

  it('let exactly one of concurrent refreshes with the same token win, and revoke the family', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const outcomes = await Promise.all(Array.from({ length: 4 }, () => refresh(first.refreshToken)));
    const winners = outcomes.filter((outcome) => outcome.ok);
    expect(winners).toHaveLength(1);
    // The first loser finds the token spent and revokes the session; any later one may find it
    // already revoked.
    const losers = outcomes.filter((outcome) => !outcome.ok);
    expect(losers).toContainEqual({ ok: false, reason: 'reused', userId, sessionId: first.sessionId });
    for (const loser of losers) {
      expect(loser).toMatchObject({ ok: false, reason: expect.stringMatching(/^(reused|revoked)$/), userId });
    }
    // Reuse ended the session: the winner's new refresh token is refused, and nothing is left stored.
    expect(await sessionIsLive(database, first.sessionId)).toBe(false);
    const winner = winners[0];
    if (!winner?.ok) throw new Error('no winner');
    expect(await refresh(winner.tokens.refreshToken)).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await storedFor(first.sessionId)).toEqual({ rows: [], keys: [] });
    const revoked = await database.query('SELECT revoked_reason FROM sessions WHERE id = $1', [first.sessionId]);
    expect(revoked.rows).toEqual([{ revoked_reason: 'refresh_token_reused' }]);
  });

  it('refuse unknown, forged and expired refresh tokens', async () => {
    expect(await refresh('tgr_nope')).toEqual({ ok: false, reason: 'unknown' });
    expect(await refresh('not-even-ours')).toMatchObject({ reason: 'unknown' });
    const userId = await newUser();
    const live = await login(userId);
    // The right session with another secret, and a real secret moved to another session.
    const otherSecret = `${live.refreshToken.slice(0, 37)}${randomBytes(32).toString('base64url')}`;
    expect(await refresh(otherSecret)).toEqual({ ok: false, reason: 'unknown' });
    const elsewhere = await login(userId);
    const moved = `tgr_${elsewhere.sessionId.replaceAll('-', '')}${live.refreshToken.slice(36)}`;
    expect(await refresh(moved)).toEqual({ ok: false, reason: 'unknown' });
    expect((await refresh(live.refreshToken)).ok).toBe(true);

    const old = await login(userId, new Date(Date.now() - sessionLifetimeMs - 1_000));
    expect(await refresh(old.refreshToken)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('list, revoke one, and revoke all of a user’s sessions, forgetting their refresh tokens', async () => {
    const userId = await newUser();
    const a = await login(userId);
    const b = await login(userId);
    const c = await login(userId);
    const listed = await listActiveSessions(database, userId);
    expect(listed.map((session) => session.id).sort()).toEqual([a.sessionId, b.sessionId, c.sessionId].sort());
    expect(listed[0]).toMatchObject({ ip: '203.0.113.7', userAgent: 'tollgate-cli/0.1' });

    const stranger = await newUser();
    const store = refreshTokens.value;
    expect(
      await revokeSession(database, {
        userId: stranger,
        sessionId: a.sessionId,
        reason: 'revoked',
        refreshTokens: store,
      }),
    ).toBe(false);
    expect((await storedFor(a.sessionId)).rows.length + (await storedFor(a.sessionId)).keys.length).toBeGreaterThan(0);
    expect(
      await revokeSession(database, { userId, sessionId: a.sessionId, reason: 'logout', refreshTokens: store }),
    ).toBe(true);
    expect(await sessionIsLive(database, a.sessionId)).toBe(false);
    expect(await refresh(a.refreshToken)).toMatchObject({ reason: 'revoked' });
    expect(await storedFor(a.sessionId)).toEqual({ rows: [], keys: [] });

    expect(await revokeAllSessions(database, { userId, refreshTokens: store })).toBe(2);
    expect(await listActiveSessions(database, userId)).toEqual([]);
    for (const session of [b, c]) {
      expect(await storedFor(session.sessionId)).toEqual({ rows: [], keys: [] });
      expect(await refresh(session.refreshToken)).toMatchObject({ reason: 'revoked' });
    }
  });
});

async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!accept(last)) {
    if (Date.now() > deadline) throw new Error(`not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await probe();
  }
  return last;
}

describe.skipIf(!testRedisUrl)('refresh tokens in Redis', () => {
  it('still rotate after Redis forgot its scripts (NOSCRIPT: sent again)', async () => {
    const userId = await newUser();
    const first = await login(userId);
    const admin = new Redis(testRedisUrl ?? '');
    try {
      await admin.script('FLUSH');
    } finally {
      admin.disconnect();
    }
    const second = await refresh(first.refreshToken);
    expect(second.ok).toBe(true);
    expect(await refresh(first.refreshToken)).toMatchObject({ reason: 'reused' });
  });

  it('answer 503 session_store_unavailable while Redis is away, accept nothing, and work again when it is back', async () => {
    const target = new URL(testRedisUrl ?? '');
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    const proxied = await openTestRefreshTokens(database, { redisUrl: `redis://127.0.0.1:${proxy.port}` });
    const keyring = createKeyring({ current: randomBytes(32) });
    const mail = await createTestMailer();
    const { app } = createApiApp({
      config: { bodyLimitBytes: 64 * 1024, trustProxy: false, metricsToken: undefined },
      database,
      counters: createMemoryCounterStore(),
      logger: silentLogger(),
      keyring,
      mailer: mail.mailer,
      refreshTokens: proxied.value,
    });
    const server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
    const signingKey = accessTokenSigningKey(keyring);
    const openSession = (userId: string) =>
      database.transaction((tx) => createSession(tx, { userId, client: {}, signingKey, refreshTokens: proxied.value }));
    const refreshOverHttp = async (token: string) => {
      const response = await fetch(`${server.url}/v1/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: token }),
      });
      const body = (await response.json()) as {
        refresh_token?: string;
        session_id?: string;
        error?: { code: string; message: string };
      };
      return { status: response.status, body };
    };
    try {
      const userId = await newUser();
      const kept = await openSession(userId);
      const loggedOut = await openSession(userId);
      const up = await refreshOverHttp(kept.refreshToken);
      expect(up.status).toBe(200);
      const token = up.body.refresh_token ?? '';

      await proxy.cut();
      const down = await refreshOverHttp(token);
      expect(down.status).toBe(503);
      expect(down.body.error).toMatchObject({
        code: 'session_store_unavailable',
        message: 'the session store cannot be reached; try again shortly',
      });
      // A login cannot hand out a token that could not be checked: it fails and leaves no session.
      await expect(openSession(userId)).rejects.toMatchObject({ code: 'session_store_unavailable', status: 503 });
      expect((await listActiveSessions(database, userId)).map((session) => session.id).sort()).toEqual(
        [kept.sessionId, loggedOut.sessionId].sort(),
      );
      // Logging out still works, and its refresh token is refused at once: the session is checked in
      // PostgreSQL before Redis is asked.
      expect(
        await revokeSession(database, {
          userId,
          sessionId: loggedOut.sessionId,
          reason: 'logout',
          refreshTokens: proxied.value,
        }),
      ).toBe(true);
      expect(await refreshOverHttp(loggedOut.refreshToken)).toMatchObject({
        status: 401,
        body: { error: { code: 'unauthorized', message: 'the refresh token is revoked' } },
      });

      await proxy.restore();
      // The refresh refused during the outage spent nothing: the same token works once Redis is back.
      const back = await eventually(
        () => refreshOverHttp(token),
        (answer) => answer.status !== 503,
      );
      expect(back.status).toBe(200);
      expect(back.body.session_id).toBe(kept.sessionId);
    } finally {
      await server.close(1_000);
      await mail.dispose();
      await proxied.dispose();
      await proxy.close();
    }
  }, 30_000);
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
