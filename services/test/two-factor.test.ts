import { randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import type { RunningServer } from '../src/http/http-server.js';
import { createUserWithPassword } from '../src/identity/users.js';
import type { Database } from '../src/storage/database.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';
import type { MailFolder } from './support/mail.js';

let database: Database;
let server: RunningServer;
let mail: MailFolder;
const password = 'correct horse battery staple 42';

let testApi: TestApi;

beforeAll(async () => {
  testApi = await startTestApi();
  ({ database, server, mail } = testApi);
});
afterAll(() => testApi.dispose());

interface Tokens {
  access_token: string;
  session_id: string;
  user: { id: string; email: string };
}

interface Challenge {
  two_factor_required: true;
  challenge: string;
  challenge_expires_at: string;
  methods: string[];
}

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

async function send(method: string, path: string, body?: unknown, token?: string): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function expectError(response: Response, status: number, code: string): Promise<ErrorBody['error']> {
  const body = (await response.json()) as ErrorBody;
  expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
  return body.error;
}

/** The code an authenticator app shows during `step` (unix seconds / 30). */
function totpAt(secret: string, step: number): string {
  return generateSync({ secret, epoch: step * 30, period: 30, digits: 6, algorithm: 'sha1' });
}

const currentStep = () => Math.floor(Date.now() / 30_000);

interface Account {
  id: string;
  email: string;
  /** A session opened before 2FA was on. */
  token: string;
}

async function newAccount(options: { verified?: boolean } = {}): Promise<Account> {
  const email = `grace.${randomBytes(4).toString('hex')}@example.com`;
  const user = await database.transaction((tx) => createUserWithPassword(tx, { email, password, name: 'Grace' }));
  if (options.verified) await database.query('UPDATE users SET email_verified_at = now() WHERE id = $1', [user.id]);
  const response = await send('POST', '/v1/auth/login', { email, password });
  expect(response.status).toBe(200);
  const tokens = (await response.json()) as Tokens;
  return { id: user.id, email, token: tokens.access_token };
}

interface Enrolled extends Account {
  secret: string;
  recoveryCodes: string[];
  /** The TOTP step the confirmation code belonged to: later codes must be of a later step. */
  confirmedStep: number;
}

async function enrol(account: Account): Promise<Enrolled> {
  const started = await send('POST', '/v1/me/2fa/totp', undefined, account.token);
  expect(started.status).toBe(200);
  const { secret } = (await started.json()) as { secret: string };
  const step = currentStep();
  const confirmed = await send('POST', '/v1/me/2fa/totp/confirm', { code: totpAt(secret, step) }, account.token);
  expect(confirmed.status).toBe(200);
  const { recovery_codes } = (await confirmed.json()) as { recovery_codes: string[] };
  return { ...account, secret, recoveryCodes: recovery_codes, confirmedStep: step };
}

async function passwordStep(email: string): Promise<Challenge> {
  const response = await send('POST', '/v1/auth/login', { email, password });
  expect(response.status).toBe(200);
  const body = (await response.json()) as Challenge;
  expect(body.two_factor_required).toBe(true);
  return body;
}

async function auditEntries(userId: string): Promise<{ action: string; details: Record<string, unknown> }[]> {
  const result = await database.query<{ action: string; details: Record<string, unknown> }>(
    'SELECT action, details FROM audit_log WHERE actor_user_id = $1 ORDER BY seq',
    [userId],
  );
  return result.rows;
}

async function sessionCount(userId: string): Promise<number> {
  const result = await database.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1', [
    userId,
  ]);
  return result.rows[0]?.n ?? 0;
}

describe(`two-factor authentication over HTTP (${expectedDatabaseDriver})`, () => {
  it('enrols an authenticator app: a secret shown once, confirmed by a code, then 10 recovery codes', async () => {
    const account = await newAccount();
    const started = await send('POST', '/v1/me/2fa/totp', undefined, account.token);
    expect(started.status).toBe(200);
    expect(started.headers.get('cache-control')).toBe('no-store');
    const { secret, otpauth_uri } = (await started.json()) as { secret: string; otpauth_uri: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauth_uri).toBe(
      `otpauth://totp/Tollgate:${encodeURIComponent(account.email)}?secret=${secret}&issuer=Tollgate&algorithm=SHA1&digits=6&period=30`,
    );
    const pending = await send('GET', '/v1/me/2fa', undefined, account.token);
    expect(await pending.json()).toMatchObject({ totp: 'pending', methods: [] });
    // Until confirmed, the password alone still signs in.
    const stillPassword = await send('POST', '/v1/auth/login', { email: account.email, password });
    expect(await stillPassword.json()).toHaveProperty('access_token');

    const wrong = await send('POST', '/v1/me/2fa/totp/confirm', { code: '000000' }, account.token);
    await expectError(wrong, 400, 'validation_failed');
    const confirmed = await send(
      'POST',
      '/v1/me/2fa/totp/confirm',
      { code: totpAt(secret, currentStep()) },
      account.token,
    );
    expect(confirmed.status).toBe(200);
    const { recovery_codes } = (await confirmed.json()) as { recovery_codes: string[] };
    expect(recovery_codes).toHaveLength(10);
    expect(new Set(recovery_codes).size).toBe(10);
    for (const code of recovery_codes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);

    const status = await send('GET', '/v1/me/2fa', undefined, account.token);
    expect(await status.json()).toMatchObject({
      totp: 'enabled',
      email_codes: false,
      recovery_codes_remaining: 10,
      methods: ['totp', 'recovery_code'],
    });
    // A second app cannot silently replace the first.
    await expectError(
      await send('POST', '/v1/me/2fa/totp', undefined, account.token),
      409,
      'two_factor_already_enabled',
    );
    expect((await auditEntries(account.id)).map((entry) => entry.action)).toContain('user.two_factor_enabled');
  });

  it('asks for the second factor after a right password, and opens no session before it', async () => {
    const account = await enrol(await newAccount());
    const sessionsBefore = await sessionCount(account.id);
    const challenge = await passwordStep(account.email);
    expect(challenge.challenge).toMatch(/^tgc_[A-Za-z0-9_-]{43}$/);
    expect(challenge.methods).toEqual(['totp', 'recovery_code']);
    const expiresIn = new Date(challenge.challenge_expires_at).getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(4 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(5 * 60_000);
    expect(challenge).not.toHaveProperty('access_token');
    expect(await sessionCount(account.id)).toBe(sessionsBefore);
    // The challenge is no bearer token.
    expect((await send('GET', '/v1/me', undefined, challenge.challenge)).status).toBe(401);

    const completed = await send('POST', '/v1/auth/login/2fa', {
      challenge: challenge.challenge,
      code: totpAt(account.secret, account.confirmedStep + 1),
    });
    expect(completed.status).toBe(200);
    const tokens = (await completed.json()) as Tokens;
    expect(tokens.user.id).toBe(account.id);
    const me = await send('GET', '/v1/me', undefined, tokens.access_token);
    expect(await me.json()).toMatchObject({ id: account.id, session_id: tokens.session_id });
    const login = (await auditEntries(account.id)).filter((entry) => entry.action === 'auth.login').at(-1);
    expect(login?.details).toEqual({ two_factor: 'totp' });
    expect((await auditEntries(account.id)).map((entry) => entry.action)).toContain('auth.two_factor_challenge_issued');

    // A challenge works once.
    const again = await send('POST', '/v1/auth/login/2fa', {
      challenge: challenge.challenge,
      code: account.recoveryCodes[0],
    });
    await expectError(again, 401, 'two_factor_challenge_expired');
  });

  it('refuses a TOTP code used before, even within its 30 seconds', async () => {
    const account = await enrol(await newAccount());
    const code = totpAt(account.secret, account.confirmedStep + 1);
    const first = await passwordStep(account.email);
    expect((await send('POST', '/v1/auth/login/2fa', { challenge: first.challenge, code })).status).toBe(200);

    const second = await passwordStep(account.email);
    const replay = await send('POST', '/v1/auth/login/2fa', { challenge: second.challenge, code, method: 'totp' });
    const error = await expectError(replay, 401, 'two_factor_invalid');
    expect(error.message).toMatch(/already used/);
    // The code that confirmed the setup is used too.
    const confirmation = totpAt(account.secret, account.confirmedStep);
    const replayConfirmation = await send('POST', '/v1/auth/login/2fa', {
      challenge: second.challenge,
      code: confirmation,
    });
    expect((await expectError(replayConfirmation, 401, 'two_factor_invalid')).message).toMatch(/already used/);
    const failures = (await auditEntries(account.id)).filter((entry) => entry.action === 'auth.two_factor_failed');
    expect(failures.map((entry) => entry.details)).toEqual([
      { operation: 'login', method: 'totp', reason: 'replayed', attempts: 1 },
      { operation: 'login', method: 'totp', reason: 'replayed', attempts: 2 },
    ]);
  });

  it('refuses a wrong code, and after 5 wrong codes the challenge is dead', async () => {
    const account = await enrol(await newAccount());
    const { challenge } = await passwordStep(account.email);
    const sessionsBefore = await sessionCount(account.id);
    const right = totpAt(account.secret, account.confirmedStep + 1);
    const wrong = right === '123456' ? '654321' : '123456';
    for (let attempt = 1; attempt <= 5; attempt++) {
      const response = await send('POST', '/v1/auth/login/2fa', { challenge, code: wrong });
      const error = await expectError(response, 401, 'two_factor_invalid');
      expect(error.message).toMatch(/^the code is wrong/);
      expect(error.details).toEqual({ attempts_left: 5 - attempt });
    }
    const dead = await send('POST', '/v1/auth/login/2fa', { challenge, code: right });
    expect((await expectError(dead, 401, 'two_factor_challenge_expired')).message).toMatch(/too many wrong codes/);
    const recovery = await send('POST', '/v1/auth/login/2fa', { challenge, code: account.recoveryCodes[0] });
    await expectError(recovery, 401, 'two_factor_challenge_expired');
    expect(await sessionCount(account.id)).toBe(sessionsBefore);
    const failed = (await auditEntries(account.id)).filter((entry) => entry.action === 'auth.two_factor_failed');
    expect(failed).toHaveLength(5);

    // A new login works, with the code that the dead challenge never accepted.
    const fresh = await passwordStep(account.email);
    expect((await send('POST', '/v1/auth/login/2fa', { challenge: fresh.challenge, code: right })).status).toBe(200);
  });

  it('refuses an expired or unknown challenge', async () => {
    const account = await enrol(await newAccount());
    const { challenge } = await passwordStep(account.email);
    await database.query(
      `UPDATE two_factor_challenges SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [account.id],
    );
    const code = totpAt(account.secret, account.confirmedStep + 1);
    const expired = await send('POST', '/v1/auth/login/2fa', { challenge, code });
    expect((await expectError(expired, 401, 'two_factor_challenge_expired')).message).toMatch(/expired/);
    const unknown = await send('POST', '/v1/auth/login/2fa', { challenge: `tgc_${'A'.repeat(43)}`, code });
    await expectError(unknown, 401, 'two_factor_challenge_expired');
  });

  it('accepts each recovery code once', async () => {
    const account = await enrol(await newAccount());
    const [code] = account.recoveryCodes;
    const first = await passwordStep(account.email);
    // Typed in capitals and without the dash, as people do.
    const typed = code?.replace('-', '').toUpperCase();
    const used = await send('POST', '/v1/auth/login/2fa', { challenge: first.challenge, code: typed });
    expect(used.status).toBe(200);
    const login = (await auditEntries(account.id)).filter((entry) => entry.action === 'auth.login').at(-1);
    expect(login?.details).toEqual({ two_factor: 'recovery_code' });

    const second = await passwordStep(account.email);
    const again = await send('POST', '/v1/auth/login/2fa', { challenge: second.challenge, code });
    await expectError(again, 401, 'two_factor_invalid');
    const status = await send('GET', '/v1/me/2fa', undefined, account.token);
    expect(await status.json()).toMatchObject({ recovery_codes_remaining: 9 });
  });

  it('replaces the recovery codes with a current TOTP code only', async () => {
    const account = await enrol(await newAccount());
    const withRecovery = await send(
      'POST',
      '/v1/me/2fa/recovery-codes',
      { code: account.recoveryCodes[0] },
      account.token,
    );
    await expectError(withRecovery, 403, 'reauthentication_failed');
    const replaced = await send(
      'POST',
      '/v1/me/2fa/recovery-codes',
      { code: totpAt(account.secret, account.confirmedStep + 1) },
      account.token,
    );
    expect(replaced.status).toBe(200);
    const { recovery_codes } = (await replaced.json()) as { recovery_codes: string[] };
    expect(recovery_codes).toHaveLength(10);
    expect(recovery_codes).not.toContain(account.recoveryCodes[1]);

    const old = await passwordStep(account.email);
    const refused = await send('POST', '/v1/auth/login/2fa', {
      challenge: old.challenge,
      code: account.recoveryCodes[1],
    });
    await expectError(refused, 401, 'two_factor_invalid');
    const fresh = await send('POST', '/v1/auth/login/2fa', { challenge: old.challenge, code: recovery_codes[0] });
    expect(fresh.status).toBe(200);
    expect((await auditEntries(account.id)).map((entry) => entry.action)).toContain(
      'user.two_factor_recovery_codes_replaced',
    );
  });

  it('sends a 6-digit code by email for the second step when email codes are on', async () => {
    const unverified = await newAccount();
    const refused = await send('POST', '/v1/me/2fa/email', { enabled: true }, unverified.token);
    await expectError(refused, 409, 'two_factor_email_unverified');

    const account = await newAccount({ verified: true });
    const enabled = await send('POST', '/v1/me/2fa/email', { enabled: true }, account.token);
    expect(await enabled.json()).toMatchObject({ email_codes: true, totp: 'off', methods: ['email'] });
    const { challenge, methods } = await passwordStep(account.email);
    expect(methods).toEqual(['email']);

    const sent = await send('POST', '/v1/auth/login/2fa/email', { challenge });
    expect(sent.status).toBe(200);
    expect(await sent.json()).toMatchObject({ sent_to: `g***@example.com` });
    const message = (await mail.messages()).find((text) => text.includes(`To: ${account.email}`));
    const code = /Subject: Your Tollgate sign-in code: (\d{6})/.exec(message ?? '')?.[1];
    expect(code).toMatch(/^\d{6}$/);
    expect(message).toContain('X-Tollgate-Purpose: login-code');

    const wrong = await send('POST', '/v1/auth/login/2fa', {
      challenge,
      code: code === '000000' ? '000001' : '000000',
      method: 'email',
    });
    await expectError(wrong, 401, 'two_factor_invalid');
    const completed = await send('POST', '/v1/auth/login/2fa', { challenge, code });
    expect(completed.status).toBe(200);
    const login = (await auditEntries(account.id)).filter((entry) => entry.action === 'auth.login').at(-1);
    expect(login?.details).toEqual({ two_factor: 'email' });
    // The database keeps the code's hash only.
    const stored = await database.query<{ row: string }>(
      'SELECT row_to_json(c)::text AS row FROM two_factor_challenges c WHERE user_id = $1',
      [account.id],
    );
    expect(stored.rows.map((row) => row.row).join('')).not.toContain(`"${code}"`);

    // Turning email codes off is turning 2FA off here: it takes the password.
    const noPassword = await send('POST', '/v1/me/2fa/email', { enabled: false }, account.token);
    await expectError(noPassword, 400, 'validation_failed');
    const wrongPassword = await send(
      'POST',
      '/v1/me/2fa/email',
      { enabled: false, password: 'not the password' },
      account.token,
    );
    await expectError(wrongPassword, 403, 'reauthentication_failed');
    const off = await send('POST', '/v1/me/2fa/email', { enabled: false, password }, account.token);
    expect(await off.json()).toMatchObject({ email_codes: false, methods: [] });
    const plain = await send('POST', '/v1/auth/login', { email: account.email, password });
    expect(await plain.json()).toHaveProperty('access_token');
  });

  it('turns 2FA off only with the password and a current code', async () => {
    const account = await enrol(await newAccount());
    const noCode = await send('DELETE', '/v1/me/2fa', { password }, account.token);
    await expectError(noCode, 400, 'validation_failed');
    const wrongPassword = await send(
      'DELETE',
      '/v1/me/2fa',
      { password: 'not the password', code: account.recoveryCodes[0] },
      account.token,
    );
    expect((await expectError(wrongPassword, 403, 'reauthentication_failed')).message).toBe('the password is wrong');
    const wrongCode = await send('DELETE', '/v1/me/2fa', { password, code: '123-456' }, account.token);
    expect((await expectError(wrongCode, 403, 'reauthentication_failed')).message).toBe('the code is wrong');
    expect(await (await send('GET', '/v1/me/2fa', undefined, account.token)).json()).toMatchObject({
      totp: 'enabled',
      recovery_codes_remaining: 10,
    });

    const off = await send('DELETE', '/v1/me/2fa', { password, code: account.recoveryCodes[0] }, account.token);
    expect(off.status).toBe(204);
    const rows = await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id]);
    expect(rows.rowCount).toBe(0);
    const plain = await send('POST', '/v1/auth/login', { email: account.email, password });
    expect(await plain.json()).toHaveProperty('access_token');
    const actions = (await auditEntries(account.id)).map((entry) => entry.action);
    expect(actions).toEqual(expect.arrayContaining(['auth.reauthentication_failed', 'auth.two_factor_failed']));
    expect(actions.at(-2)).toBe('user.two_factor_disabled');
    await expectError(await send('DELETE', '/v1/me/2fa', { password }, account.token), 409, 'two_factor_not_enabled');
  });

  it('stops taking codes for an account after 20 wrong ones in 15 minutes', async () => {
    const account = await enrol(await newAccount());
    await database.query(
      `INSERT INTO two_factor_failures (user_id, failed_at) SELECT $1, now() FROM generate_series(1, 20)`,
      [account.id],
    );
    const { challenge } = await passwordStep(account.email);
    const code = totpAt(account.secret, account.confirmedStep + 1);
    await expectError(await send('POST', '/v1/auth/login/2fa', { challenge, code }), 429, 'rate_limited');
    await database.query(
      `UPDATE two_factor_failures SET failed_at = now() - interval '16 minutes' WHERE user_id = $1`,
      [account.id],
    );
    expect((await send('POST', '/v1/auth/login/2fa', { challenge, code })).status).toBe(200);
  });

  it('keeps no plaintext TOTP secret, recovery code or challenge in the database', async () => {
    const account = await enrol(await newAccount());
    const { challenge } = await passwordStep(account.email);
    const columns = await database.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns
       WHERE table_name = 'user_two_factor' AND data_type IN ('text', 'ARRAY', 'character varying')`,
    );
    // Hashes, sealed values, and the masked phone number of SMS codes (sms-two-factor.test.ts checks it).
    expect(columns.rows.map((row) => row.column_name).sort()).toEqual([
      'recovery_code_hashes',
      'sms_enrolment_code_hash',
      'sms_phone_masked',
      'sms_phone_sealed',
      'totp_secret_sealed',
    ]);
    const row = await database.query<{ totp_secret_sealed: string; recovery_code_hashes: string[]; dump: string }>(
      `SELECT totp_secret_sealed, recovery_code_hashes, row_to_json(t)::text AS dump
       FROM user_two_factor t WHERE user_id = $1`,
      [account.id],
    );
    const stored = row.rows[0];
    expect(stored?.totp_secret_sealed.startsWith('tgs1.')).toBe(true);
    expect(stored?.recovery_code_hashes).toHaveLength(10);
    for (const hash of stored?.recovery_code_hashes ?? []) expect(hash).toMatch(/^[0-9a-f]{64}$/);
    const everything = await database.query<{ dump: string }>(
      `SELECT row_to_json(t)::text AS dump FROM user_two_factor t
       UNION ALL SELECT row_to_json(c)::text FROM two_factor_challenges c`,
    );
    const text = everything.rows.map((entry) => entry.dump).join('\n');
    expect(text).not.toContain(account.secret);
    for (const code of account.recoveryCodes) {
      expect(text).not.toContain(code);
      expect(text).not.toContain(code.replace('-', ''));
    }
    expect(text).not.toContain(challenge.slice(4));
    // Neither does the audit log.
    const audit = await database.query<{ dump: string }>('SELECT row_to_json(a)::text AS dump FROM audit_log a');
    const auditText = audit.rows.map((entry) => entry.dump).join('\n');
    expect(auditText).not.toContain(account.secret);
    expect(auditText).not.toContain(challenge.slice(4));
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
  });

  it('refuses to add a phone number when this API has no SMS sender', async () => {
    const account = await newAccount();
    const refused = await send('POST', '/v1/me/2fa/sms', { phone: '+15551234567' }, account.token);
    expect((await expectError(refused, 501, 'sms_not_configured')).message).toBe(
      'this installation cannot send text messages',
    );
    const rows = await database.query('SELECT 1 FROM user_two_factor WHERE user_id = $1', [account.id]);
    expect(rows.rowCount).toBe(0);
  });

  it('documents the login answer as a union in the OpenAPI document', async () => {
    const document = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
    };
    const schema = JSON.stringify(document.paths['/v1/auth/login']?.post?.responses['200']);
    expect(schema).toContain('anyOf');
    expect(schema).toContain('two_factor_required');
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/v1/me/2fa',
        '/v1/me/2fa/totp/confirm',
        '/v1/auth/login/2fa',
        '/v1/auth/login/2fa/email',
        '/v1/me/2fa/sms',
        '/v1/me/2fa/sms/confirm',
        '/v1/auth/login/2fa/sms',
      ]),
    );
  });
});
