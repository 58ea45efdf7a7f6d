import { createHash, randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import type { Database } from '../src/storage/database.js';
import { accountsOn } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, testRedisUrl } from './support/backends.js';
import { dumpRedisKeys } from './support/redis-keys.js';

const password = 'privacy test passphrase 77';
let database: Database;

let testApi: TestApi;
const { account: person, call } = accountsOn(() => testApi, {
  password,
  name: 'Ada Lovelace',
  headers: { 'user-agent': 'privacy-test/1.0' },
});

beforeAll(async () => {
  testApi = await startTestApi();
  ({ database } = testApi);
});
afterAll(() => testApi.dispose());

/** Every row of every table, and the refresh tokens' Redis keys, as text: what a dump would contain. */
async function dump(): Promise<string> {
  const tables = await database.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await database.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`);
    parts.push(...rows.rows.map((row) => row.row));
  }
  if (testRedisUrl) parts.push(JSON.stringify(await dumpRedisKeys(testApi.refreshTokenKeyPrefix)));
  return parts.join('\n');
}

describe(`account export and deletion (${expectedDatabaseDriver})`, () => {
  it('exports everything held about the person, without secrets', async () => {
    const ada = await person('export');
    const team = await call(ada, 'POST', '/v1/teams', { name: `Export ${randomBytes(3).toString('hex')}` });
    const key = await call(ada, 'POST', `/v1/teams/${team.body.id}/keys`, { name: 'ci' });
    const archive = await call(ada, 'GET', '/v1/me/export');
    expect(archive.status).toBe(200);
    expect(archive.body).toMatchObject({
      format: 'tollgate-account-export/1',
      account: { id: ada.id, email: ada.email, name: 'Ada Lovelace', has_password: true },
      teams: [expect.objectContaining({ id: team.body.id, role: 'admin', owner: true })],
      sessions: [expect.objectContaining({ user_agent: 'privacy-test/1.0' })],
      api_keys_created: [expect.objectContaining({ id: key.body.id, prefix: key.body.prefix })],
    });
    expect(archive.body.audit_entries.map((entry: { action: string }) => entry.action)).toEqual(
      expect.arrayContaining(['auth.login', 'team.created', 'key.created']),
    );
    const text = JSON.stringify(archive.body);
    expect(text).not.toContain(key.body.key.split('_')[3]);
    expect(text).not.toMatch(/scrypt\$/);
  });

  it('refuses a deletion without the typed email or the right password, and while owning a shared team', async () => {
    const owner = await person('owner');
    const member = await person('member');
    const team = await call(owner, 'POST', '/v1/teams', { name: `Shared ${randomBytes(3).toString('hex')}` });
    await database.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'user')`, [
      team.body.id,
      member.id,
    ]);

    expect((await call(owner, 'DELETE', '/v1/me', { confirm: 'someone@else', password })).body.error.code).toBe(
      'validation_failed',
    );
    expect((await call(owner, 'DELETE', '/v1/me', { confirm: owner.email, password: 'nope' })).body.error.code).toBe(
      'reauthentication_failed',
    );
    const owning = await call(owner, 'DELETE', '/v1/me', { confirm: owner.email, password });
    expect(owning.status).toBe(409);
    expect(owning.body.error.code).toBe('owner_must_transfer');
    const still = await database.query('SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL', [owner.id]);
    expect(still.rowCount).toBe(1);
  });

  it('erases the personal data and keeps the audit trail, pseudonymous and intact', async () => {
    const ada = await person('erase');
    const team = await call(ada, 'POST', '/v1/teams', { name: `Solo ${randomBytes(3).toString('hex')}` });
    const refreshTokenHash = createHash('sha256').update(ada.refreshToken).digest('hex');
    expect(await dump()).toContain(refreshTokenHash);
    expect((await call(ada, 'DELETE', '/v1/me', { confirm: ada.email.toUpperCase(), password })).status).toBe(204);

    const user = await database.query<{
      email: string;
      name: string | null;
      password_hash: string | null;
      deleted_at: Date | null;
    }>('SELECT email, name, password_hash, deleted_at FROM users WHERE id = $1', [ada.id]);
    expect(user.rows[0]).toMatchObject({
      email: `deleted-user-${ada.id}@deleted.invalid`,
      name: null,
      password_hash: null,
    });
    expect(user.rows[0]?.deleted_at).toBeInstanceOf(Date);
    const sessions = await database.query<{ ip: string | null; user_agent: string | null }>(
      'SELECT ip, user_agent FROM sessions WHERE user_id = $1',
      [ada.id],
    );
    expect(sessions.rows.every((row) => row.ip === null && row.user_agent === null)).toBe(true);
    // Its refresh token's hash is gone, wherever refresh tokens live.
    expect(await dump()).not.toContain(refreshTokenHash);
    expect((await database.query('SELECT 1 FROM team_members WHERE user_id = $1', [ada.id])).rowCount).toBe(0);
    // The team (which may hold invoices) stays, without an owner.
    expect((await database.query('SELECT owner_user_id FROM teams WHERE id = $1', [team.body.id])).rows).toEqual([
      { owner_user_id: null },
    ]);

    expect((await call(ada, 'GET', '/v1/me')).status).toBe(401);
    expect((await call(undefined, 'POST', '/v1/auth/refresh', { refresh_token: ada.refreshToken })).status).toBe(401);
    expect((await call(undefined, 'POST', '/v1/auth/login', { email: ada.email, password })).status).toBe(401);

    const audit = await database.query<{ action: string }>(
      'SELECT action FROM audit_log WHERE actor_user_id = $1 ORDER BY seq',
      [ada.id],
    );
    expect(audit.rows.map((row) => row.action)).toEqual(['auth.login', 'team.created', 'user.deleted']);
    expect(await dump()).not.toContain(ada.email);
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
  });
});

describe(`secrets at rest (${expectedDatabaseDriver})`, () => {
  it('leave no plaintext password, API-key secret, TOTP seed, recovery code or refresh token in a dump', async () => {
    const ada = await person('secrets');
    const team = await call(ada, 'POST', '/v1/teams', { name: `Vault ${randomBytes(3).toString('hex')}` });
    const key = (await call(ada, 'POST', `/v1/teams/${team.body.id}/keys`, { name: 'prod' })).body.key as string;
    const enrol = await call(ada, 'POST', '/v1/me/2fa/totp');
    expect(enrol.status).toBe(200);
    const secret = enrol.body.secret as string;
    const confirmed = await call(ada, 'POST', '/v1/me/2fa/totp/confirm', { code: generateSync({ secret }) });
    expect(confirmed.status).toBe(200);
    const recoveryCodes = confirmed.body.recovery_codes as string[];
    expect(recoveryCodes).toHaveLength(10);

    const text = await dump();
    for (const [what, value] of [
      ['password', password],
      ['API-key secret', key.split('_')[3] ?? key],
      ['TOTP seed', secret],
      ['refresh token', ada.refreshToken.slice(4)],
      ...recoveryCodes.map((code, index) => [`recovery code ${index}`, code] as const),
      ...recoveryCodes.map((code, index) => [`recovery code ${index} without dash`, code.replace('-', '')] as const),
    ] as const) {
      expect(text.includes(value), `${what} found in the dump`).toBe(false);
    }
    // The seed is there, sealed.
    expect(text).toMatch(/"totp_secret_sealed":"tgs1\./);
  });
});
