import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import { createUserWithPassword } from '../src/identity/users.js';
import type { Database } from '../src/storage/database.js';
import { accountsOn } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, testRedisUrl } from './support/backends.js';
import { dumpRedisKeys } from './support/redis-keys.js';

let database: Database;
const password = 'correct horse battery staple 42';

let testApi: TestApi;
/** Every request says which client it is, which the sessions list shows. */
const { call } = accountsOn(() => testApi, { headers: { 'user-agent': 'auth-test/1.0' } });

beforeAll(async () => {
  testApi = await startTestApi();
  ({ database } = testApi);
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

async function login(email: string): Promise<Tokens> {
  const response = await call(undefined, 'POST', '/v1/auth/login', { email, password });
  expect(response.status).toBe(200);
  return response.body as Tokens;
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
    const me = await call(tokens.access_token, 'GET', '/v1/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: account.id, session_id: tokens.session_id, email_verified: false });
    expect(await auditActions(account.id)).toEqual(['auth.login']);
  });

  it('answers a wrong password and an unknown email alike, and audits both', async () => {
    const account = await newAccount();
    const wrong = await call(undefined, 'POST', '/v1/auth/login', {
      email: account.email,
      password: 'not the password at all',
    });
    const unknown = await call(undefined, 'POST', '/v1/auth/login', { email: 'nobody-here@example.com', password });
    for (const response of [wrong, unknown]) {
      expect(response.status).toBe(401);
      const body = response.body as { error: { code: string; message: string } };
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
      expect(
        (await call(undefined, 'POST', '/v1/auth/login', { email: account.email, password: 'wrong password here' }))
          .status,
      ).toBe(401);
    }
    const locked = await call(undefined, 'POST', '/v1/auth/login', { email: account.email, password });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBe('60');
    expect((locked.body as { error: { code: string } }).error.code).toBe('rate_limited');
  });

  it('refuses requests without a valid bearer token', async () => {
    const none = await call(undefined, 'GET', '/v1/me');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const bad = await call('nonsense', 'GET', '/v1/me');
    expect(bad.status).toBe(401);
  });

  it('rotates refresh tokens, and revokes the session when a used one comes back', async () => {
    const account = await newAccount();
    const first = await login(account.email);
    const refreshed = await call(undefined, 'POST', '/v1/auth/refresh', { refresh_token: first.refresh_token });
    expect(refreshed.status).toBe(200);
    const second = refreshed.body as Tokens;
    expect(second.refresh_token).not.toBe(first.refresh_token);

    const replay = await call(undefined, 'POST', '/v1/auth/refresh', { refresh_token: first.refresh_token });
    expect(replay.status).toBe(401);
    expect((replay.body as { error: { code: string } }).error.code).toBe('refresh_token_reused');
    // Everything of that session is dead now, including the newest tokens.
    expect((await call(undefined, 'POST', '/v1/auth/refresh', { refresh_token: second.refresh_token })).status).toBe(
      401,
    );
    const me = await call(second.access_token, 'GET', '/v1/me');
    expect(me.status).toBe(401);
    expect(await auditActions(account.id)).toEqual(['auth.login', 'auth.refresh_token_reused']);
  });

  it('lists sessions, ends one, and logs out everywhere', async () => {
    const account = await newAccount();
    const a = await login(account.email);
    const b = await login(account.email);
    const listed = await call(a.access_token, 'GET', '/v1/sessions');
    const sessions = (listed.body as { sessions: { id: string; current: boolean; user_agent: string }[] }).sessions;
    expect(sessions.map((session) => session.id).sort()).toEqual([a.session_id, b.session_id].sort());
    expect(sessions.find((session) => session.current)?.id).toBe(a.session_id);
    expect(sessions[0]?.user_agent).toBe('auth-test/1.0');

    const ended = await call(a.access_token, 'DELETE', `/v1/sessions/${b.session_id}`);
    expect(ended.status).toBe(204);
    expect((await call(b.access_token, 'GET', '/v1/me')).status).toBe(401);

    const c = await login(account.email);
    const all = await call(c.access_token, 'POST', '/v1/auth/logout-everywhere');
    expect(all.body).toEqual({ revoked: 2 });
    for (const token of [a.access_token, c.access_token]) {
      expect((await call(token, 'GET', '/v1/me')).status).toBe(401);
    }
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
  });

  it('logs out the current session only', async () => {
    const account = await newAccount();
    const a = await login(account.email);
    const b = await login(account.email);
    expect((await call(a.access_token, 'POST', '/v1/auth/logout')).status).toBe(204);
    expect((await call(a.access_token, 'GET', '/v1/me')).status).toBe(401);
    expect((await call(b.access_token, 'GET', '/v1/me')).status).toBe(200);
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
