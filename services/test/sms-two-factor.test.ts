import { randomBytes, randomInt } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import type { RunningServer } from '../src/http/http-server.js';
import { smsPhoneContext } from '../src/identity/two-factor-store.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { createKeyring, keyIdOf } from '../src/secrets/master-keyring.js';
import { reencryptSecrets } from '../src/secrets/rotate-secrets.js';
import { TwilioSmsSender } from '../src/sms/twilio-sms-sender.js';
import type { Database } from '../src/storage/database.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { invalidTwilioNumber, startTwilioServer, type TwilioServer } from './support/twilio.js';

const password = 'text me a code please 314';
const masterKey = randomBytes(32);

let testApi: TestApi;
let twilio: TwilioServer;
let database: Database;
let server: RunningServer;

beforeAll(async () => {
  twilio = await startTwilioServer();
  testApi = await startTestApi({
    sms: new TwilioSmsSender({ ...twilio.settings(), logger: silentLogger() }),
    keyring: createKeyring({ current: masterKey }),
  });
  ({ database, server } = testApi);
});
afterAll(async () => {
  await testApi.dispose();
  await twilio.close();
});

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of many shapes; the assertions check them
type Json = any;

async function send(method: string, path: string, body?: unknown, token?: string) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : undefined) as Json };
}

function expectError(answer: { status: number; body: Json }, status: number, code: string) {
  expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code });
  return answer.body.error as { code: string; message: string; details?: Record<string, unknown> };
}

/** A number no other test uses: +1 555 and 7 random digits. */
function newPhone(): string {
  return `+1555${randomInt(1_000_000, 10_000_000)}`;
}

interface Account {
  id: string;
  email: string;
  /** A session opened before SMS codes were on. */
  token: string;
}

async function newAccount(options: { verified?: boolean } = {}): Promise<Account> {
  const email = `ada.${randomBytes(4).toString('hex')}@example.com`;
  const user = await database.transaction((tx) => createUserWithPassword(tx, { email, password, name: 'Ada' }));
  if (options.verified) await database.query('UPDATE users SET email_verified_at = now() WHERE id = $1', [user.id]);
  const login = await send('POST', '/v1/auth/login', { email, password });
  expect(login.status).toBe(200);
  return { id: user.id, email, token: login.body.access_token };
}

/** Adds and confirms a phone number with the code the Twilio server received. */
async function enrolSms(account: Account, phone = newPhone()): Promise<Account & { phone: string }> {
  expect((await send('POST', '/v1/me/2fa/sms', { phone }, account.token)).status).toBe(200);
  const confirmed = await send('POST', '/v1/me/2fa/sms/confirm', { code: twilio.lastCode(phone) }, account.token);
  expect(confirmed.status).toBe(200);
  return { ...account, phone };
}

async function challengeFor(email: string): Promise<{ challenge: string; methods: string[] }> {
  const answer = await send('POST', '/v1/auth/login', { email, password });
  expect(answer.status).toBe(200);
  expect(answer.body.two_factor_required).toBe(true);
  return answer.body;
}

async function actions(userId: string): Promise<{ action: string; details: Record<string, unknown> }[]> {
  const result = await database.query<{ action: string; details: Record<string, unknown> }>(
    'SELECT action, details FROM audit_log WHERE actor_user_id = $1 ORDER BY seq',
    [userId],
  );
  return result.rows;
}

/** Every row of every table, as text: what a database dump would contain. */
async function dump(): Promise<string> {
  const tables = await database.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await database.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`);
    parts.push(...rows.rows.map((row) => row.row));
  }
  return parts.join('\n');
}

const otherCode = (code: string | undefined) => (code === '000000' ? '000001' : '000000');

describe(`SMS codes as a second factor over HTTP (${expectedDatabaseDriver})`, () => {
  it('refuses a number that is not E.164 with invalid_phone, storing and sending nothing', async () => {
    const account = await newAccount();
    const sent = twilio.messages.length;
    for (const phone of ['4155550123', '+0 555 123', 'call me', '+1555123456789012']) {
      const error = expectError(await send('POST', '/v1/me/2fa/sms', { phone }, account.token), 400, 'invalid_phone');
      expect(error.message).not.toContain(phone);
    }
    expect(twilio.messages.length).toBe(sent);
    expect((await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id])).rowCount).toBe(0);
  });

  it('adds a number: a code by SMS, confirmed, then SMS codes are on', async () => {
    const account = await newAccount();
    const phone = newPhone();
    const started = await send(
      'POST',
      '/v1/me/2fa/sms',
      { phone: `${phone.slice(0, 2)} (${phone.slice(2, 5)}) ${phone.slice(5)}` },
      account.token,
    );
    expect(started.status).toBe(200);
    const masked = `+1 *** *** ${phone.slice(-4)}`;
    expect(started.body).toEqual({ sms: 'pending', phone: masked, expires_at: expect.any(String) });
    const lifetime = new Date(started.body.expires_at).getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(9 * 60_000);
    expect(lifetime).toBeLessThanOrEqual(10 * 60_000);
    const message = twilio.messages.at(-1);
    expect(message).toMatchObject({ to: phone, from: twilio.from });
    expect(message?.body).toMatch(/^\d{6} is your Tollgate code to confirm this phone/);

    // Pending: the status shows it, and the password alone still signs in.
    expect((await send('GET', '/v1/me/2fa', undefined, account.token)).body).toMatchObject({
      sms: 'pending',
      sms_phone: masked,
      methods: [],
    });
    expect((await send('POST', '/v1/auth/login', { email: account.email, password })).body).toHaveProperty(
      'access_token',
    );

    const code = twilio.lastCode(phone);
    const wrong = await send('POST', '/v1/me/2fa/sms/confirm', { code: otherCode(code) }, account.token);
    expect(expectError(wrong, 400, 'validation_failed').details).toMatchObject({ attempts_left: 4 });
    const confirmed = await send('POST', '/v1/me/2fa/sms/confirm', { code }, account.token);
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ sms: 'enabled', sms_phone: masked, methods: ['sms'] });
    // The code works once.
    expectError(
      await send('POST', '/v1/me/2fa/sms/confirm', { code }, account.token),
      409,
      'two_factor_already_enabled',
    );
    // A stolen session cannot swap the number for its own.
    expectError(
      await send('POST', '/v1/me/2fa/sms', { phone: newPhone() }, account.token),
      409,
      'two_factor_already_enabled',
    );
    const audit = await actions(account.id);
    expect(audit.map((entry) => entry.action)).toContain('user.two_factor_sms_enabled');
    expect(audit.find((entry) => entry.action === 'auth.two_factor_failed')?.details).toEqual({
      operation: 'sms_enrolment',
      method: 'sms',
      reason: 'wrong',
    });
    const failures = await database.query('SELECT 1 FROM two_factor_failures WHERE user_id = $1', [account.id]);
    expect(failures.rowCount).toBe(1);
  });

  it('lets a confirmation code go after 5 wrong tries or once expired', async () => {
    const account = await newAccount();
    const phone = newPhone();
    await send('POST', '/v1/me/2fa/sms', { phone }, account.token);
    const code = twilio.lastCode(phone);
    for (let attempt = 1; attempt <= 5; attempt++) {
      await send('POST', '/v1/me/2fa/sms/confirm', { code: otherCode(code) }, account.token);
    }
    const exhausted = await send('POST', '/v1/me/2fa/sms/confirm', { code }, account.token);
    expect(expectError(exhausted, 400, 'validation_failed').message).toMatch(/too many wrong codes/);

    await send('POST', '/v1/me/2fa/sms', { phone }, account.token);
    await database.query(
      `UPDATE user_two_factor SET sms_enrolment_expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [account.id],
    );
    const expired = await send('POST', '/v1/me/2fa/sms/confirm', { code: twilio.lastCode(phone) }, account.token);
    expect(expectError(expired, 400, 'validation_failed').message).toMatch(/expired/);
    expect((await send('GET', '/v1/me/2fa', undefined, account.token)).body.sms).toBe('pending');
  });

  it('completes a login with a code sent by SMS; a wrong or replayed code is refused', async () => {
    const account = await enrolSms(await newAccount());
    const { challenge, methods } = await challengeFor(account.email);
    expect(methods).toEqual(['sms']);
    const sent = await send('POST', '/v1/auth/login/2fa/sms', { challenge });
    expect(sent.status).toBe(200);
    expect(sent.body).toEqual({ sent_to: `+1 *** *** ${account.phone.slice(-4)}`, expires_at: expect.any(String) });
    const code = twilio.lastCode(account.phone);
    expect(twilio.messages.at(-1)?.body).toMatch(
      /^\d{6} is your Tollgate sign-in code\. It works once, for 5 minutes\./,
    );

    const wrong = await send('POST', '/v1/auth/login/2fa', { challenge, code: otherCode(code), method: 'sms' });
    expect(expectError(wrong, 401, 'two_factor_invalid').details).toEqual({ attempts_left: 4 });
    const completed = await send('POST', '/v1/auth/login/2fa', { challenge, code });
    expect(completed.status).toBe(200);
    expect(completed.body.user.id).toBe(account.id);
    const login = (await actions(account.id)).filter((entry) => entry.action === 'auth.login').at(-1);
    expect(login?.details).toEqual({ two_factor: 'sms' });

    // Replayed: the challenge it belonged to is used, and a new challenge never sent that code.
    const replayed = await send('POST', '/v1/auth/login/2fa', { challenge, code, method: 'sms' });
    expectError(replayed, 401, 'two_factor_challenge_expired');
    const next = await challengeFor(account.email);
    expectError(
      await send('POST', '/v1/auth/login/2fa', { challenge: next.challenge, code }),
      401,
      'two_factor_invalid',
    );
    // The database keeps the code's hash only.
    expect(await dump()).not.toContain(`"${code}"`);
  });

  it('sends at most 3 codes a challenge and 10 text messages an account an hour', async () => {
    const account = await enrolSms(await newAccount());
    const { challenge } = await challengeFor(account.email);
    for (let sent = 1; sent <= 3; sent++) {
      expect((await send('POST', '/v1/auth/login/2fa/sms', { challenge })).status).toBe(200);
    }
    const codes = twilio.messages.filter((message) => message.to === account.phone).slice(-3);
    const fourth = await send('POST', '/v1/auth/login/2fa/sms', { challenge });
    expect(expectError(fourth, 429, 'rate_limited').message).toMatch(/enough codes were texted/);
    // Only the last code sent works.
    const first = /\d{6}/.exec(codes[0]?.body ?? '')?.[0];
    const last = /\d{6}/.exec(codes[2]?.body ?? '')?.[0];
    if (first !== last) {
      expectError(await send('POST', '/v1/auth/login/2fa', { challenge, code: first }), 401, 'two_factor_invalid');
    }
    expect((await send('POST', '/v1/auth/login/2fa', { challenge, code: last })).status).toBe(200);

    // Enrolment (1) and 3 logins so far; 6 more fill the hour.
    await database.query(`INSERT INTO sms_sends (user_id, sent_at) SELECT $1, now() FROM generate_series(1, 6)`, [
      account.id,
    ]);
    const fresh = await challengeFor(account.email);
    const before = twilio.messages.length;
    const capped = await send('POST', '/v1/auth/login/2fa/sms', { challenge: fresh.challenge });
    expectError(capped, 429, 'rate_limited');
    expect(Number(capped.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(twilio.messages.length).toBe(before);
    await database.query(`UPDATE sms_sends SET sent_at = now() - interval '61 minutes' WHERE user_id = $1`, [
      account.id,
    ]);
    expect((await send('POST', '/v1/auth/login/2fa/sms', { challenge: fresh.challenge })).status).toBe(200);
  });

  it("counts wrong SMS codes against the account's limit with the other codes", async () => {
    const account = await enrolSms(await newAccount());
    await database.query(
      `INSERT INTO two_factor_failures (user_id, failed_at) SELECT $1, now() FROM generate_series(1, 20)`,
      [account.id],
    );
    const { challenge } = await challengeFor(account.email);
    await send('POST', '/v1/auth/login/2fa/sms', { challenge });
    const code = twilio.lastCode(account.phone);
    expectError(await send('POST', '/v1/auth/login/2fa', { challenge, code }), 429, 'rate_limited');
  });

  it("surfaces Twilio's errors as stable codes, and keeps no number it could not confirm", async () => {
    const account = await newAccount();
    const invalid = await send('POST', '/v1/me/2fa/sms', { phone: invalidTwilioNumber }, account.token);
    expect(expectError(invalid, 400, 'invalid_phone').details).toEqual({
      provider: 'twilio',
      provider_status: 400,
      provider_code: 21211,
    });
    expect((await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id])).rowCount).toBe(0);

    const enrolled = await enrolSms(await newAccount());
    const { challenge } = await challengeFor(enrolled.email);
    const token = twilio.authToken;
    twilio.authToken = randomBytes(16).toString('hex'); // revoked at Twilio
    try {
      const refused = await send('POST', '/v1/auth/login/2fa/sms', { challenge });
      expect(expectError(refused, 502, 'sms_failed').details).toMatchObject({ provider_code: 20003 });
      const phone = newPhone();
      expectError(await send('POST', '/v1/me/2fa/sms', { phone }, account.token), 502, 'sms_failed');
      expect((await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id])).rowCount).toBe(0);
    } finally {
      twilio.authToken = token;
    }
    // The failed send still counted against the challenge; the next one arrives.
    expect((await send('POST', '/v1/auth/login/2fa/sms', { challenge })).status).toBe(200);
  });

  it('turns SMS codes off with the password, and forgets the number', async () => {
    const account = await enrolSms(await newAccount());
    expectError(await send('DELETE', '/v1/me/2fa/sms', {}, account.token), 400, 'validation_failed');
    const wrong = await send('DELETE', '/v1/me/2fa/sms', { password: 'not the password' }, account.token);
    expect(expectError(wrong, 403, 'reauthentication_failed').message).toBe('the password is wrong');
    const off = await send('DELETE', '/v1/me/2fa/sms', { password }, account.token);
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ sms: 'off', sms_phone: null, methods: [] });
    expect((await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id])).rowCount).toBe(0);
    expect((await send('POST', '/v1/auth/login', { email: account.email, password })).body).toHaveProperty(
      'access_token',
    );
    const audit = (await actions(account.id)).map((entry) => entry.action);
    expect(audit).toEqual(expect.arrayContaining(['auth.reauthentication_failed', 'user.two_factor_sms_disabled']));
    expectError(await send('DELETE', '/v1/me/2fa/sms', { password }, account.token), 409, 'two_factor_not_enabled');

    // A pending number goes without the password.
    await send('POST', '/v1/me/2fa/sms', { phone: newPhone() }, account.token);
    expect((await send('DELETE', '/v1/me/2fa/sms', undefined, account.token)).body).toMatchObject({ sms: 'off' });
  });

  it('works beside an authenticator app and email codes, each turned off on its own', async () => {
    const account = await enrolSms(await newAccount({ verified: true }));
    const totp = await send('POST', '/v1/me/2fa/totp', undefined, account.token);
    const secret = totp.body.secret as string;
    const step = Math.floor(Date.now() / 30_000);
    const code = generateSync({ secret, epoch: step * 30, period: 30, digits: 6, algorithm: 'sha1' });
    expect((await send('POST', '/v1/me/2fa/totp/confirm', { code }, account.token)).status).toBe(200);
    expect((await send('POST', '/v1/me/2fa/email', { enabled: true }, account.token)).body.methods).toEqual([
      'totp',
      'recovery_code',
      'email',
      'sms',
    ]);
    // With SMS codes still on, email codes go off without the password: 2FA stays on.
    const emailOff = await send('POST', '/v1/me/2fa/email', { enabled: false }, account.token);
    expect(emailOff.body).toMatchObject({ email_codes: false, sms: 'enabled' });
    const smsOff = await send('DELETE', '/v1/me/2fa/sms', { password }, account.token);
    expect(smsOff.body).toMatchObject({ sms: 'off', totp: 'enabled', methods: ['totp', 'recovery_code'] });
    expect((await challengeFor(account.email)).methods).toEqual(['totp', 'recovery_code']);
  });

  it('forgets the number when two-factor authentication is turned off as a whole', async () => {
    const account = await enrolSms(await newAccount());
    const off = await fetch(`${server.url}/v1/me/2fa`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${account.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ password }),
    });
    expect(off.status).toBe(204);
    expect((await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id])).rowCount).toBe(0);
    expect((await actions(account.id)).map((entry) => entry.action).at(-1)).toBe('user.two_factor_disabled');
  });

  it('keeps the number sealed: not in a dump, not in the audit log; re-encrypted with the master key', async () => {
    const account = await enrolSms(await newAccount());
    const text = await dump();
    const digits = account.phone.slice(1);
    expect(text).not.toContain(digits);
    expect(text).not.toContain(digits.slice(1)); // without the country code
    expect(text).toContain(`+1 *** *** ${digits.slice(-4)}`);
    const row = await database.query<{ sealed: string }>(
      'SELECT sms_phone_sealed AS sealed FROM user_two_factor WHERE user_id = $1',
      [account.id],
    );
    const sealed = row.rows[0]?.sealed ?? '';
    expect(sealed.startsWith(`tgs1.${keyIdOf(masterKey)}.`)).toBe(true);
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });

    // Rotation: a new current key, the old one previous, and the number is sealed under the new key.
    const newKey = randomBytes(32);
    const keyring = createKeyring({ current: newKey, previous: [masterKey] });
    const report = await reencryptSecrets(database, { keyring, actorUserId: account.id });
    expect(report.reencrypted).toBeGreaterThanOrEqual(1);
    const after = await database.query<{ sealed: string }>(
      'SELECT sms_phone_sealed AS sealed FROM user_two_factor WHERE user_id = $1',
      [account.id],
    );
    const resealed = after.rows[0]?.sealed ?? '';
    expect(resealed.startsWith(`tgs1.${keyIdOf(newKey)}.`)).toBe(true);
    expect(createKeyring({ current: newKey }).decryptText(resealed, smsPhoneContext(account.id))).toBe(account.phone);
  });

  it('shows the masked number in the account export, and erases it with the account', async () => {
    const account = await enrolSms(await newAccount());
    const exported = await send('GET', '/v1/me/export', undefined, account.token);
    expect(exported.status).toBe(200);
    const masked = `+1 *** *** ${account.phone.slice(-4)}`;
    expect(exported.body.two_factor).toMatchObject({ sms_enabled: true, sms_phone: masked });
    expect(JSON.stringify(exported.body)).not.toContain(account.phone.slice(1));

    const { challenge } = await challengeFor(account.email);
    await send('POST', '/v1/auth/login/2fa/sms', { challenge });
    const deleted = await send('DELETE', '/v1/me', { confirm: account.email, password }, account.token);
    expect(deleted.status).toBe(204);
    for (const table of ['user_two_factor', 'two_factor_challenges', 'sms_sends']) {
      const rows = await database.query(`SELECT 1 FROM ${table} WHERE user_id = $1`, [account.id]);
      expect(rows.rowCount, table).toBe(0);
    }
    expect(await dump()).not.toContain(masked);
  });
});
