import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import type { RunningServer } from '../src/http/http-server.js';
import { createUserWithPassword } from '../src/identity/users.js';
import type { Database } from '../src/storage/database.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, testRedisUrl } from './support/backends.js';
import { dumpRedisKeys } from './support/redis-keys.js';

let database: Database;
let server: RunningServer;
const password = 'correct horse battery staple 42';

let testApi: TestApi;

beforeAll(async () => {
  testApi = await startTestApi();
  ({ database, server } = testApi);
});
afterAll(() => testApi.dispose());

async function newAccount(): Promise<{ email: string; id: string }> {
  const email = `ada.${randomBytes(4).toString('hex')}@example.com`;
  const user = await database.transaction((tx) => createUserWithPassword(tx, { email, password, name: 'Ada' }));
  return { email, id: user.id };
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  session_id: string;
  user: { id: string; email: string };
}

async function post(path: string, body?: unknown, token?: string): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      'user-agent': 'auth-test/1.0',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function login(email: string): Promise<Tokens> {
  const response = await post('/v1/auth/login', { email, password });
  expect(response.status).toBe(200);
  return (await response.json()) as Tokens;
}

async function auditActions(userId?: string): Promise<string[]> {
  const result = await database.query<{ action: string }>(
    `SELECT action FROM audit_log ${userId ? 'WHERE actor_user_id = $1' : ''} ORDER BY seq`,
    userId ? [userId] : [],
  );
  return result.rows.map((row) => row.action);
}

describe(`password login over HTTP (${expectedDatabaseDriver})`, () => {
  it('signs in, answers /v1/me with the bearer token, and audits the login', async () => {
    const account = await newAccount();
    const tokens = await login(account.email.toUpperCase());
    expect(tokens.user).toMatchObject({ id: account.id, email: account.email });
    const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: account.id, session_id: tokens.session_id, email_verified: false });
    expect(await auditActions(account.id)).toEqual(['auth.login']);
  });

  it('answers a wrong password and an unknown email alike, and audits both', async () => {
    const account = await newAccount();
    const wrong = await post('/v1/auth/login', { email: account.email, password: 'not the password at all' });
    const unknown = await post('/v1/auth/login', { email: 'nobody-here@example.com', password });
    for (const response of [wrong, unknown]) {
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error).toMatchObject({ code: 'invalid_credentials', message: 'the email or the password is wrong' });
    }
    expect(await auditActions(account.id)).toEqual(['auth.login_failed']);
    // The typed address is kept only as a keyed pseudonym: comparable, not readable.
    const anonymous = await database.query<{ target_id: string; actor_label: string }>(
      `SELECT target_id, actor_label FROM audit_log WHERE action = 'auth.login_failed' AND actor_user_id IS NULL`,
    );
    expect(anonymous.rows.at(-1)?.target_id).toMatch(/^email:[0-9a-f]{32}$/);
    const everything = await database.query<{ row: string }>('SELECT row_to_json(a)::text AS row FROM audit_log a');
    expect(everything.rows.map((row) => row.row).join('')).not.toContain('@example.com');
  });

  it('locks an account after five wrong passwords, even against the right one, with Retry-After', async () => {
    const account = await newAccount();
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await post('/v1/auth/login', { email: account.email, password: 'wrong password here' })).status).toBe(
        401,
      );
    }
    const locked = await post('/v1/auth/login', { email: account.email, password });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBe('60');
    expect(((await locked.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
  });

  it('refuses requests without a valid bearer token', async () => {
    const none = await fetch(`${server.url}/v1/me`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const bad = await fetch(`${server.url}/v1/me`, { headers: { authorization: 'Bearer nonsense' } });
    expect(bad.status).toBe(401);
  });

  it('rotates refresh tokens, and revokes the session when a used one comes back', async () => {
    const account = await newAccount();
    const first = await login(account.email);
    const refreshed = await post('/v1/auth/refresh', { refresh_token: first.refresh_token });
    expect(refreshed.status).toBe(200);
    const second = (await refreshed.json()) as Tokens;
    expect(second.refresh_token).not.toBe(first.refresh_token);

    const replay = await post('/v1/auth/refresh', { refresh_token: first.refresh_token });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: { code: string } }).error.code).toBe('refresh_token_reused');
    // Everything of that session is dead now, including the newest tokens.
    expect((await post('/v1/auth/refresh', { refresh_token: second.refresh_token })).status).toBe(401);
    const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${second.access_token}` } });
    expect(me.status).toBe(401);
    expect(await auditActions(account.id)).toEqual(['auth.login', 'auth.refresh_token_reused']);
  });

  it('lists sessions, ends one, and logs out everywhere', async () => {
    const account = await newAccount();
    const a = await login(account.email);
    const b = await login(account.email);
    const listed = await fetch(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${a.access_token}` } });
    const sessions = ((await listed.json()) as { sessions: { id: string; current: boolean; user_agent: string }[] })
      .sessions;
    expect(sessions.map((session) => session.id).sort()).toEqual([a.session_id, b.session_id].sort());
    expect(sessions.find((session) => session.current)?.id).toBe(a.session_id);
    expect(sessions[0]?.user_agent).toBe('auth-test/1.0');

    const ended = await fetch(`${server.url}/v1/sessions/${b.session_id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(ended.status).toBe(204);
    expect(
      (await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${b.access_token}` } })).status,
    ).toBe(401);

    const c = await login(account.email);
    const all = await post('/v1/auth/logout-everywhere', undefined, c.access_token);
    expect(await all.json()).toEqual({ revoked: 2 });
    for (const token of [a.access_token, c.access_token]) {
      expect((await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    }
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
  });

  it('logs out the current session only', async () => {
    const account = await newAccount();
    const a = await login(account.email);
    const b = await login(account.email);
    expect((await post('/v1/auth/logout', undefined, a.access_token)).status).toBe(204);
    expect(
      (await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${a.access_token}` } })).status,
    ).toBe(401);
    expect(
      (await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${b.access_token}` } })).status,
    ).toBe(200);
  });

  it('stores no plaintext password or refresh token, in the database or in Redis', async () => {
    const account = await newAccount();
    const tokens = await login(account.email);
    const dump = await database.query<{ row: string }>(
      `SELECT row_to_json(u)::text AS row FROM users u WHERE id = $1
       UNION ALL SELECT encode(token_sha256, 'hex') FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE s.user_id = $1`,
      [account.id],
    );
    const redis = testRedisUrl ? await dumpRedisKeys(testApi.refreshTokenKeyPrefix) : [];
    const text = [...dump.rows.map((row) => row.row), JSON.stringify(redis)].join('\n');
    // The token's hash is there, wherever refresh tokens live: the dump looked in the right place.
    expect(text).toContain(createHash('sha256').update(tokens.refresh_token).digest('hex'));
    expect(text).not.toContain(password);
    expect(text).not.toContain(tokens.refresh_token);
    // The secret part, after `tgr_<session id>_`.
    expect(text).not.toContain(tokens.refresh_token.slice(37));
  });
});
