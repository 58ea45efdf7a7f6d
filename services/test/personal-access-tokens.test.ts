import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import { issueAccountToken } from '../src/identity/account-tokens.js';
import type { Database } from '../src/storage/database.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

const password = 'token test passphrase 4711';
let testApi: TestApi;
const { account: person, call } = accountsOn(() => testApi, { password });
let database: Database;

beforeAll(async () => {
  testApi = await startTestApi();
  ({ database } = testApi);
});
afterAll(() => testApi.dispose());

async function createToken(who: SignedInAccount, body: Record<string, unknown> = { name: 'ci' }) {
  const created = await call(who, 'POST', '/v1/me/tokens', body);
  expect(created.status).toBe(201);
  return created.body as { id: string; token: string; prefix: string; expires_at: string | null; name: string };
}

async function tokenRows(userId: string) {
  const rows = await database.query<{ id: string; revoked: boolean }>(
    'SELECT id, revoked_at IS NOT NULL AS revoked FROM personal_access_tokens WHERE user_id = $1',
    [userId],
  );
  return rows.rows;
}

async function auditActions(userId: string): Promise<string[]> {
  const rows = await database.query<{ action: string }>(
    'SELECT action FROM audit_log WHERE actor_user_id = $1 ORDER BY seq',
    [userId],
  );
  return rows.rows.map((row) => row.action);
}

const dayMs = 24 * 60 * 60 * 1000;

describe(`personal access tokens (${expectedDatabaseDriver})`, () => {
  it('create, use, list with the last use and never the secret, revoke: refused at once', async () => {
    const ada = await person('lifecycle');
    const before = Date.now();
    const created = await createToken(ada, { name: 'ci' });
    expect(created.token).toMatch(/^tgpat_[A-Za-z0-9_-]{43}$/);
    expect(created.prefix).toBe(created.token.slice(0, 12));
    expect(created.name).toBe('ci');
    // 90 days by default.
    const expires = new Date(created.expires_at ?? 0).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 90 * dayMs - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 90 * dayMs + 1000);

    const me = await call(created.token, 'GET', '/v1/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      id: ada.id,
      email: ada.email,
      authenticated_via: 'token',
      session_id: null,
      token_id: created.id,
    });
    const bySession = await call(ada, 'GET', '/v1/me');
    expect(bySession.body).toMatchObject({ authenticated_via: 'session', token_id: null });
    // A token works for the rest of the API too (here the account's teams).
    expect(
      (await call(created.token, 'POST', '/v1/teams', { name: `Tok ${randomBytes(3).toString('hex')}` })).status,
    ).toBe(201);

    const listed = await call(ada, 'GET', '/v1/me/tokens');
    expect(listed.status).toBe(200);
    expect(listed.body.tokens).toEqual([
      {
        id: created.id,
        name: 'ci',
        prefix: created.prefix,
        created_at: expect.any(String),
        expires_at: created.expires_at,
        expired: false,
        last_used_at: expect.any(String),
        last_used_ip: expect.stringMatching(/127\.0\.0\.1$/),
        current: false,
      },
    ]);
    expect(new Date(listed.body.tokens[0].last_used_at).getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(listed.text).not.toContain(created.token.slice(12));
    // Listed with the token itself: it is the current one.
    expect((await call(created.token, 'GET', '/v1/me/tokens')).body.tokens[0].current).toBe(true);

    expect((await call(ada, 'DELETE', `/v1/me/tokens/${created.id}`)).status).toBe(204);
    const refused = await call(created.token, 'GET', '/v1/me');
    expect(refused.status).toBe(401);
    expect(refused.body.error).toMatchObject({
      code: 'unauthorized',
      message: 'this personal access token was revoked',
    });
    expect((await call(ada, 'GET', '/v1/me/tokens')).body.tokens).toEqual([]);
    expect((await call(ada, 'DELETE', `/v1/me/tokens/${created.id}`)).status).toBe(404);

    expect(await auditActions(ada.id)).toEqual(expect.arrayContaining(['user.token_created', 'user.token_revoked']));
    expect((await verifyAuditChain(database)).ok).toBe(true);
  });

  it('records the last use at most once a minute, not on every request', async () => {
    const ada = await person('last-use');
    const created = await createToken(ada);
    expect((await call(created.token, 'GET', '/v1/me')).status).toBe(200);
    const lastUse = async () =>
      (
        await database.query<{ at: Date }>('SELECT last_used_at AS at FROM personal_access_tokens WHERE id = $1', [
          created.id,
        ])
      ).rows[0]?.at.getTime();
    const first = await lastUse();
    expect(first).toBeDefined();
    expect((await call(created.token, 'GET', '/v1/me')).status).toBe(200);
    expect(await lastUse()).toBe(first);
    // A minute later, the next request records its use again.
    await database.query(
      `UPDATE personal_access_tokens SET last_used_at = last_used_at - interval '61 seconds' WHERE id = $1`,
      [created.id],
    );
    const aged = await lastUse();
    expect((await call(created.token, 'GET', '/v1/me')).status).toBe(200);
    expect(await lastUse()).toBeGreaterThan(aged ?? 0);
  });

  it('takes a lifetime of 1 to 365 days or null (never); refuses anything else and writes nothing', async () => {
    const ada = await person('lifetime');
    const never = await createToken(ada, { name: 'forever', expires_in_days: null });
    expect(never.expires_at).toBeNull();
    const day = await createToken(ada, { name: 'short', expires_in_days: 1 });
    expect(new Date(day.expires_at ?? 0).getTime() - Date.now()).toBeLessThanOrEqual(dayMs);
    for (const body of [
      { name: 'too long', expires_in_days: 366 },
      { name: 'zero', expires_in_days: 0 },
      { name: 'fraction', expires_in_days: 1.5 },
      { name: '' },
      { name: 'x'.repeat(101) },
      { name: 'line\nbreak' },
      {},
    ]) {
      const refused = await call(ada, 'POST', '/v1/me/tokens', body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error.code).toBe('validation_failed');
    }
    expect(await tokenRows(ada.id)).toHaveLength(2);
  });

  it('refuses an expired token with 401, and a token of a deleted account', async () => {
    const ada = await person('expired');
    const created = await createToken(ada, { name: 'old', expires_in_days: 1 });
    await database.query(
      `UPDATE personal_access_tokens SET created_at = now() - interval '3 days', expires_at = now() - interval '1 second'
       WHERE id = $1`,
      [created.id],
    );
    const refused = await call(created.token, 'GET', '/v1/me');
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('unauthorized');
    expect(refused.body.error.message).toMatch(/^this personal access token has expired \(on \d{4}-/);
    // Still listed, marked expired, so its owner sees why CI broke.
    expect((await call(ada, 'GET', '/v1/me/tokens')).body.tokens).toEqual([
      expect.objectContaining({ id: created.id, expired: true }),
    ]);

    expect((await call(`tgpat_${'A'.repeat(43)}`, 'GET', '/v1/me')).body.error).toMatchObject({
      code: 'unauthorized',
      message: 'this personal access token is invalid',
    });
    expect((await call('tgpat_short', 'GET', '/v1/me')).status).toBe(401);
  });

  it('cannot create tokens, delete the account, or change its email, second factors or login providers: 403 session_required', async () => {
    const ada = await person('limits');
    const { token, id } = await createToken(ada);
    const refusals: [string, string, unknown?][] = [
      ['POST', '/v1/me/tokens', { name: 'more' }],
      ['DELETE', '/v1/me', { confirm: ada.email, password }],
      ['POST', '/v1/me/email', { new_email: 'elsewhere@example.com', password }],
      ['POST', '/v1/me/email/confirm', { token: `tge_${'A'.repeat(43)}` }],
      ['POST', '/v1/me/2fa/totp'],
      ['DELETE', '/v1/me/2fa', { password }],
      ['POST', '/v1/me/2fa/email', { enabled: true, password }],
      ['POST', '/v1/me/2fa/sms', { phone: '+15551234567' }],
      ['DELETE', '/v1/me/identities/00000000-0000-4000-8000-000000000000'],
      [
        'POST',
        '/v1/auth/oauth/start',
        {
          provider: 'github',
          redirect_uri: 'http://127.0.0.1:9/callback',
          code_challenge: 'A'.repeat(43),
          link: true,
        },
      ],
      ['POST', '/v1/auth/logout'],
    ];
    for (const [method, path, body] of refusals) {
      const refused = await call(token, method, path, body);
      expect(refused.status, `${method} ${path}`).toBe(403);
      expect(refused.body.error.code, `${method} ${path}`).toBe('session_required');
    }
    expect((await call(token, 'POST', '/v1/auth/logout')).body.error.message).toBe(
      'logging out needs a session, not a personal access token',
    );
    // Nothing happened: one token, the account and its email as they were, each refusal audited.
    expect(await tokenRows(ada.id)).toEqual([{ id, revoked: false }]);
    const account = await database.query('SELECT 1 FROM users WHERE id = $1 AND email = $2 AND deleted_at IS NULL', [
      ada.id,
      ada.email,
    ]);
    expect(account.rowCount).toBe(1);
    const denied = await database.query<{ details: { reason: string } }>(
      `SELECT details FROM audit_log WHERE actor_user_id = $1 AND action = 'authz.denied'`,
      [ada.id],
    );
    expect(denied.rows).toHaveLength(refusals.length + 1);
    expect(denied.rows.every((row) => row.details.reason === 'session_required')).toBe(true);
    // The token still works, and a session can do what it could not.
    expect((await call(token, 'GET', '/v1/me')).status).toBe(200);
    expect((await call(ada, 'POST', '/v1/me/tokens', { name: 'more' })).status).toBe(201);
  });

  it("answers 404 for another person's token, which stays live", async () => {
    const ada = await person('owner');
    const mallory = await person('other');
    const adas = await createToken(ada);
    const mallorys = await createToken(mallory);
    for (const bearer of [mallory.token, mallorys.token]) {
      const refused = await call(bearer, 'DELETE', `/v1/me/tokens/${adas.id}`);
      expect(refused.status).toBe(404);
      expect(refused.body.error.code).toBe('not_found');
    }
    expect((await call(mallory, 'DELETE', '/v1/me/tokens/not-a-uuid')).status).toBe(404);
    expect((await call(mallory, 'GET', '/v1/me/tokens')).body.tokens.map((t: { id: string }) => t.id)).toEqual([
      mallorys.id,
    ]);
    expect((await call(adas.token, 'GET', '/v1/me')).status).toBe(200);
    // A token may revoke itself (a CI job cleaning up after itself).
    expect((await call(mallorys.token, 'DELETE', `/v1/me/tokens/${mallorys.id}`)).status).toBe(204);
    expect((await call(mallorys.token, 'GET', '/v1/me')).status).toBe(401);
  });

  it('shows no session as current to a token, and ends sessions but not tokens with logout-everywhere', async () => {
    const ada = await person('sessions');
    const { token } = await createToken(ada);
    const sessions = await call(token, 'GET', '/v1/sessions');
    expect(sessions.status).toBe(200);
    expect(sessions.body.sessions).toHaveLength(1);
    expect(sessions.body.sessions[0].current).toBe(false);
    expect((await call(ada, 'GET', '/v1/sessions')).body.sessions[0].current).toBe(true);

    const everywhere = await call(token, 'POST', '/v1/auth/logout-everywhere');
    expect(everywhere.body).toEqual({ revoked: 1 });
    expect((await call(ada, 'GET', '/v1/me')).status).toBe(401);
    expect((await call(token, 'GET', '/v1/me')).status).toBe(200);
  });

  it('survive a password reset, which ends the sessions', async () => {
    const ada = await person('reset');
    const { token } = await createToken(ada);
    const reset = await database.transaction((tx) =>
      issueAccountToken(tx, { userId: ada.id, purpose: 'reset_password' }),
    );
    const confirmed = await call(undefined, 'POST', '/v1/auth/password-reset/confirm', {
      token: reset.token,
      password: 'a brand new passphrase 99',
    });
    expect(confirmed.body).toEqual({ status: 'password_reset', sessions_revoked: 1 });
    expect((await call(ada, 'GET', '/v1/me')).status).toBe(401);
    expect((await call(token, 'GET', '/v1/me')).status).toBe(200);
    // The notice of the change says so, and how to find and revoke them.
    const notice = (await testApi.mail.parsed()).find(
      (mail) => mail.to === ada.email && mail.subject === 'Your Tollgate password was changed',
    );
    expect(notice?.text).toContain('Personal access tokens keep working: see them with `tollgate tokens list`.');
  });

  it('holds at most 50 live tokens per account', async () => {
    const ada = await person('many');
    const ids: string[] = [];
    for (let index = 0; index < 50; index += 1) ids.push((await createToken(ada, { name: `t${index}` })).id);
    const refused = await call(ada, 'POST', '/v1/me/tokens', { name: 'one more' });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'token_limit_reached', details: { limit: 50 } });
    expect(await tokenRows(ada.id)).toHaveLength(50);
    expect((await call(ada, 'DELETE', `/v1/me/tokens/${ids[0]}`)).status).toBe(204);
    expect((await call(ada, 'POST', '/v1/me/tokens', { name: 'one more' })).status).toBe(201);
  });

  it('stores only the SHA-256: no plaintext token in the database', async () => {
    const ada = await person('dump');
    const { token } = await createToken(ada);
    const tables = await database.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const parts: string[] = [];
    for (const { table_name } of tables.rows) {
      const rows = await database.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`);
      parts.push(...rows.rows.map((row) => row.row));
    }
    const dump = parts.join('\n');
    const secret = token.slice('tgpat_'.length);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(Buffer.from(secret).toString('hex'));
    // The hash is there (row_to_json prints bytea as \x...): the dump looked in the right place.
    expect(dump).toContain(createHash('sha256').update(token).digest('hex'));
  });

  it('are listed in the account export without hashes, and deleted with the account', async () => {
    const ada = await person('privacy');
    const { token, id, prefix } = await createToken(ada, { name: 'export me' });
    expect((await call(token, 'GET', '/v1/me')).status).toBe(200);
    const archive = await call(ada, 'GET', '/v1/me/export');
    expect(archive.body.personal_access_tokens).toEqual([
      {
        id,
        name: 'export me',
        prefix,
        created_at: expect.any(String),
        expires_at: expect.any(String),
        last_used_at: expect.any(String),
        last_used_ip: expect.stringMatching(/127\.0\.0\.1$/),
        revoked_at: null,
      },
    ]);
    expect(archive.text).not.toContain(token.slice(12));
    expect(archive.text).not.toContain(createHash('sha256').update(token).digest('hex'));

    expect((await call(ada, 'DELETE', '/v1/me', { confirm: ada.email, password })).status).toBe(204);
    expect(await tokenRows(ada.id)).toEqual([]);
    expect((await call(token, 'GET', '/v1/me')).status).toBe(401);
  });
});
