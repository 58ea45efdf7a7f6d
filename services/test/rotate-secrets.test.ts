import { randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../src/api/create-api-app.js';
import { listen, type RunningServer } from '../src/http/http-server.js';
import { createKeyring, keyIdOf } from '../src/secrets/master-keyring.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { accountPassword, callApi, signUp } from './support/accounts.js';
import { expectedDatabaseDriver, openTestCounters, openTestDatabase, silentLogger } from './support/backends.js';
import { createTestMailer } from './support/mail.js';

const oldKey = randomBytes(32);
const newKey = randomBytes(32);
let database: Database;
const disposers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const db = await openTestDatabase();
  disposers.push(db.dispose);
  database = db.value;
  await runMigrations(database);
});
afterAll(async () => {
  for (const dispose of disposers.reverse()) await dispose();
});

/** An API process with the given keys, as after a restart with new settings. */
async function api(keys: { current: Buffer; previous?: Buffer[] }): Promise<RunningServer> {
  const counters = await openTestCounters();
  const mail = await createTestMailer();
  const { app } = createApiApp({
    config: { bodyLimitBytes: 64 * 1024, trustProxy: false, metricsToken: undefined },
    database,
    counters: counters.value,
    logger: silentLogger(),
    keyring: createKeyring(keys),
    mailer: mail.mailer,
  });
  const server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  disposers.push(mail.dispose, counters.dispose, () => server.close(1_000));
  return server;
}

describe(`master-key rotation (${expectedDatabaseDriver})`, () => {
  it('re-encrypts secrets under the new key, after which the old key is no longer needed', async () => {
    // Before: a TOTP seed sealed under the old key.
    const before = await api({ current: oldKey });
    const ada = await signUp({ database, server: before }, 'rotate');
    const { email } = ada;
    const enrol = (await callApi({ server: before }, ada, 'POST', '/v1/me/2fa/totp')).body;
    const secret = String(enrol.secret);
    expect(
      (await callApi({ server: before }, ada, 'POST', '/v1/me/2fa/totp/confirm', { code: generateSync({ secret }) }))
        .status,
    ).toBe(200);
    const sealedBefore = (await database.query<{ v: string }>('SELECT totp_secret_sealed AS v FROM user_two_factor'))
      .rows;
    expect(sealedBefore.every((row) => row.v.startsWith(`tgs1.${keyIdOf(oldKey)}.`))).toBe(true);

    // During: new key current, old one previous; only an operator may re-encrypt.
    const during = await api({ current: newKey, previous: [oldKey] });
    const user = (
      await callApi({ server: during }, undefined, 'POST', '/v1/auth/login', { email, password: accountPassword })
    ).body;
    expect(user.two_factor_required).toBe(true);
    const operator = await signUp({ database, server: during }, 'ops', { installationRole: 'admin' });
    const refused = await callApi({ server: during }, ada, 'POST', '/v1/admin/secrets/reencrypt');
    expect(refused.status).toBe(401); // signed with the old key: the session must refresh first
    const report = await callApi({ server: during }, operator, 'POST', '/v1/admin/secrets/reencrypt');
    expect(report.body).toEqual({ examined: 1, reencrypted: 1, current_key_id: keyIdOf(newKey) });
    const again = await callApi({ server: during }, operator, 'POST', '/v1/admin/secrets/reencrypt');
    expect(again.body).toMatchObject({ examined: 1, reencrypted: 0 });

    // After: the old key is gone, and the second factor still works.
    const after = await api({ current: newKey });
    const challenge = (
      await callApi({ server: after }, undefined, 'POST', '/v1/auth/login', { email, password: accountPassword })
    ).body;
    const finished = await callApi({ server: after }, undefined, 'POST', '/v1/auth/login/2fa', {
      challenge: challenge.challenge,
      code: generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }),
    });
    expect(finished.status).toBe(200);
    expect(finished.body.access_token).toEqual(expect.any(String));
  });
});
