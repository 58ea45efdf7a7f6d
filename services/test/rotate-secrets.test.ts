import { randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../src/api/create-api-app.js';
import { listen, type RunningServer } from '../src/http/http-server.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { createKeyring, keyIdOf } from '../src/secrets/master-keyring.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { expectedDatabaseDriver, openTestCounters, openTestDatabase, silentLogger } from './support/backends.js';
import { createTestMailer } from './support/mail.js';

const password = 'rotation test passphrase 5';
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

async function post(server: RunningServer, path: string, body?: unknown, token?: string) {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json().catch(() => undefined)) as Record<string, unknown> };
}

describe(`master-key rotation (${expectedDatabaseDriver})`, () => {
  it('re-encrypts secrets under the new key, after which the old key is no longer needed', async () => {
    const email = `rotate.${randomBytes(4).toString('hex')}@example.com`;
    await database.transaction((tx) => createUserWithPassword(tx, { email, password }));
    const operatorEmail = `ops.${randomBytes(4).toString('hex')}@example.com`;
    await database.transaction((tx) =>
      createUserWithPassword(tx, { email: operatorEmail, password, installationRole: 'admin' }),
    );

    // Before: a TOTP seed sealed under the old key.
    const before = await api({ current: oldKey });
    const ada = (await post(before, '/v1/auth/login', { email, password })).body;
    const enrol = (await post(before, '/v1/me/2fa/totp', undefined, String(ada.access_token))).body;
    const secret = String(enrol.secret);
    expect(
      (await post(before, '/v1/me/2fa/totp/confirm', { code: generateSync({ secret }) }, String(ada.access_token)))
        .status,
    ).toBe(200);
    const sealedBefore = (await database.query<{ v: string }>('SELECT totp_secret_sealed AS v FROM user_two_factor'))
      .rows;
    expect(sealedBefore.every((row) => row.v.startsWith(`tgs1.${keyIdOf(oldKey)}.`))).toBe(true);

    // During: new key current, old one previous; only an operator may re-encrypt.
    const during = await api({ current: newKey, previous: [oldKey] });
    const user = (await post(during, '/v1/auth/login', { email, password })).body;
    expect(user.two_factor_required).toBe(true);
    const operator = (await post(during, '/v1/auth/login', { email: operatorEmail, password })).body;
    const refused = await post(during, '/v1/admin/secrets/reencrypt', undefined, String(ada.access_token));
    expect(refused.status).toBe(401); // signed with the old key: the session must refresh first
    const report = await post(during, '/v1/admin/secrets/reencrypt', undefined, String(operator.access_token));
    expect(report.body).toEqual({ examined: 1, reencrypted: 1, current_key_id: keyIdOf(newKey) });
    const again = await post(during, '/v1/admin/secrets/reencrypt', undefined, String(operator.access_token));
    expect(again.body).toMatchObject({ examined: 1, reencrypted: 0 });

    // After: the old key is gone, and the second factor still works.
    const after = await api({ current: newKey });
    const challenge = (await post(after, '/v1/auth/login', { email, password })).body;
    const finished = await post(after, '/v1/auth/login/2fa', {
      challenge: challenge.challenge,
      code: generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }),
    });
    expect(finished.status).toBe(200);
    expect(finished.body.access_token).toEqual(expect.any(String));
  });
});
