import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { type AddressObject, simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../src/api/create-api-app.js';
import { verifyAuditChain } from '../src/audit/index.js';
import type { CounterStore } from '../src/counters/counter-store.js';
import { listen, type RunningServer } from '../src/http/http-server.js';
import { issueAccountToken } from '../src/identity/account-tokens.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { createKeyring, type MasterKeyring } from '../src/secrets/master-keyring.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { callApi } from './support/accounts.js';
import { expectedDatabaseDriver, openTestCounters, openTestDatabase, silentLogger } from './support/backends.js';
import { createTestMailer, type MailFolder } from './support/mail.js';

let database: Database;
let counters: CounterStore;
let keyring: MasterKeyring;
let mail: MailFolder;
let server: RunningServer;
const disposers: (() => Promise<void>)[] = [];
const password = 'correct horse battery staple 42';
const newPassword = 'a brand new passphrase nobody knows 7';
/** Every token a mail carried in this file, to prove none of them is stored. */
const mailedTokens = new Set<string>();

function apiApp(publicUrl?: string) {
  return createApiApp({
    // Behind a trusted proxy, so each request can come from its own address: sign-ups and reset
    // requests are limited per address, and this file makes more of them than one address may.
    config: { bodyLimitBytes: 64 * 1024, trustProxy: true, metricsToken: undefined, publicUrl },
    database,
    counters,
    logger: silentLogger(),
    keyring,
    mailer: mail.mailer,
  });
}

beforeAll(async () => {
  const db = await openTestDatabase();
  const store = await openTestCounters();
  disposers.push(store.dispose, db.dispose);
  database = db.value;
  counters = store.value;
  keyring = createKeyring({ current: randomBytes(32) });
  mail = await createTestMailer();
  disposers.push(mail.dispose);
  await runMigrations(database);
  server = await listen(apiApp().app.callback(), { host: '127.0.0.1', port: 0 });
  disposers.unshift(() => server.close(1_000));
});
afterAll(async () => {
  for (const dispose of disposers) await dispose();
});

const uniqueEmail = (label: string) => `${label}.${randomBytes(4).toString('hex')}@example.com`;
/** An address in the documentation range (RFC 3849) that no other request, of this run or another, uses. */
const uniqueIp = () => `2001:db8::${randomBytes(8).toString('hex').match(/..../g)?.join(':')}`;

interface Mail {
  to: string[];
  subject: string;
  text: string;
  purpose: string;
}

const tokenPattern = /tg[vpe]_[A-Za-z0-9_-]{43}/g;

async function allMail(): Promise<Mail[]> {
  const raw = await mail.messages();
  return Promise.all(
    raw.map(async (message) => {
      const parsed = await simpleParser(message);
      const to = (Array.isArray(parsed.to) ? parsed.to : parsed.to ? [parsed.to] : []).flatMap(
        (object: AddressObject) => object.value.map((entry) => entry.address ?? ''),
      );
      const text = parsed.text ?? '';
      for (const token of text.match(tokenPattern) ?? []) mailedTokens.add(token);
      return { to, subject: parsed.subject ?? '', text, purpose: String(parsed.headers.get('x-tollgate-purpose')) };
    }),
  );
}

async function mailTo(address: string): Promise<Mail[]> {
  return (await allMail()).filter((message) => message.to.includes(address));
}

/** The one token of `prefix` in the newest mail to `address` with that purpose. */
async function tokenMailedTo(address: string, purpose: string, prefix: string): Promise<string> {
  const messages = (await mailTo(address)).filter((message) => message.purpose === purpose);
  const text = messages.at(-1)?.text ?? '';
  const tokens = [...new Set(text.match(tokenPattern) ?? [])];
  expect(tokens).toHaveLength(1);
  expect(tokens[0]?.startsWith(prefix)).toBe(true);
  return tokens[0] ?? '';
}

interface ErrorAnswer {
  error: { code: string; message: string };
}

/** Each call from an address of its own, so that the per-IP limits stay out of the way. */
const call = (method: string, path: string, body?: unknown, token?: string) =>
  callApi({ server }, token, method, path, body, {
    headers: { 'user-agent': 'account-test/1.0', 'x-forwarded-for': uniqueIp() },
  });

const post = (path: string, body?: unknown, token?: string) => call('POST', path, body, token);

function errorCode(answer: { body: unknown }): string {
  return (answer.body as ErrorAnswer).error.code;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  user: { id: string; email: string; email_verified: boolean };
}

async function login(email: string, secret = password): Promise<Tokens> {
  const answer = await post('/v1/auth/login', { email, password: secret });
  expect(answer.status).toBe(200);
  return answer.body as Tokens;
}

async function usersWithEmail(email: string): Promise<{ id: string; name: string | null; verified: boolean }[]> {
  const result = await database.query<{ id: string; name: string | null; verified: boolean }>(
    'SELECT id, name, email_verified_at IS NOT NULL AS verified FROM users WHERE lower(email) = lower($1)',
    [email],
  );
  return result.rows;
}

async function auditFor(userId: string): Promise<{ action: string; outcome: string }[]> {
  const result = await database.query<{ action: string; outcome: string }>(
    'SELECT action, outcome FROM audit_log WHERE actor_user_id::text = $1 OR target_id = $1 ORDER BY seq',
    [userId],
  );
  return result.rows;
}

async function newAccount(label = 'ada'): Promise<{ email: string; id: string }> {
  const email = uniqueEmail(label);
  const user = await database.transaction((tx) => createUserWithPassword(tx, { email, password, name: 'Ada' }));
  return { email, id: user.id };
}

describe(`sign-up and email verification over HTTP (${expectedDatabaseDriver})`, () => {
  it('signs up, mails a verification link and token, and verifies the address exactly once', async () => {
    const email = uniqueEmail('grace');
    const signup = await post('/v1/auth/signup', { email, password, name: 'Grace' });
    expect(signup.status).toBe(202);
    expect(signup.body).toEqual({ status: 'verification_sent', email });

    const [user] = await usersWithEmail(email);
    expect(user).toMatchObject({ name: 'Grace', verified: false });
    const token = await tokenMailedTo(email, 'verify_email', 'tgv_');
    const [message] = await mailTo(email);
    expect(message?.text).toContain(`${server.url}/v1/auth/verify-email?token=${token}`);
    expect(message?.text).toContain(`tollgate account verify ${token}`);

    const link = await fetch(`${server.url}/v1/auth/verify-email?token=${token}`);
    expect(link.status).toBe(200);
    expect(link.headers.get('cache-control')).toBe('no-store');
    expect(await link.json()).toEqual({ status: 'email_verified', email });
    expect((await usersWithEmail(email))[0]?.verified).toBe(true);
    expect((await login(email)).user.email_verified).toBe(true);

    for (const again of [
      await post('/v1/auth/verify-email', { token }),
      await call('GET', `/v1/auth/verify-email?token=${token}`),
    ]) {
      expect(again.status).toBe(400);
      expect((again.body as ErrorAnswer).error).toMatchObject({
        code: 'token_invalid',
        message: 'this token is invalid, expired or already used',
      });
    }
    expect(await auditFor(user?.id ?? '')).toEqual([
      { action: 'user.signed_up', outcome: 'success' },
      { action: 'user.email_verified', outcome: 'success' },
      { action: 'auth.login', outcome: 'success' },
    ]);
  });

  it('answers a registered email exactly like a new one, creates nothing, and tells the owner', async () => {
    const owner = await newAccount('owner');
    const before = (await allMail()).length;
    const fresh = await post('/v1/auth/signup', { email: uniqueEmail('fresh'), password });
    const again = await post('/v1/auth/signup', { email: owner.email.toUpperCase(), password: newPassword });

    expect(again.status).toBe(fresh.status);
    expect(again.status).toBe(202);
    expect(Object.keys(again.body as object).sort()).toEqual(Object.keys(fresh.body as object).sort());
    expect(again.body).toEqual({ status: 'verification_sent', email: owner.email.toUpperCase() });
    expect(await usersWithEmail(owner.email)).toHaveLength(1);
    // Both answers sent one email each: the count does not differ either.
    expect((await allMail()).length).toBe(before + 2);

    const notices = await mailTo(owner.email);
    expect(notices).toHaveLength(1);
    expect(notices[0]?.subject).toBe('Someone tried to sign up with your email address');
    expect(notices[0]?.text).toContain('If it was you, log in');
    expect(notices[0]?.text.match(tokenPattern)).toBeNull();
    // The attempt did not change the owner's password.
    await login(owner.email);
    const audit = await database.query<{ outcome: string; actor_user_id: string | null }>(
      `SELECT outcome, actor_user_id FROM audit_log WHERE action = 'user.signup_existing_email' AND target_id = $1`,
      [owner.id],
    );
    expect(audit.rows).toEqual([{ outcome: 'failure', actor_user_id: null }]);
  });

  it('refuses a weak password or a malformed email with a clear 400 and writes nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ password: 'short' }, 'password: must be at least 12 characters'],
      [{ password: 'password1234' }, 'password: is too common: it appears in lists of leaked passwords'],
      [{ email: 'not an email' }, 'email: must be an email address, like ada@example.com'],
    ];
    const before = (await allMail()).length;
    for (const [override, message] of cases) {
      const email = uniqueEmail('weak');
      const answer = await post('/v1/auth/signup', { email, password, ...override });
      expect(answer.status).toBe(400);
      expect((answer.body as ErrorAnswer).error).toMatchObject({ code: 'validation_failed', message });
      expect(await usersWithEmail(email)).toEqual([]);
    }
    // The policy applies to registered addresses too, so a weak password reveals nothing either.
    const owner = await newAccount('strong');
    const weak = await post('/v1/auth/signup', { email: owner.email, password: 'short' });
    expect(weak.status).toBe(400);
    expect((await allMail()).length).toBe(before);
  });

  it('refuses an expired token, a token of another purpose and a superseded one', async () => {
    const account = await newAccount('late');
    const twoDaysAgo = new Date(Date.now() - 48 * 60 * 60 * 1000);
    const expired = await database.transaction((tx) =>
      issueAccountToken(tx, { userId: account.id, purpose: 'verify_email', now: twoDaysAgo }),
    );
    const answer = await post('/v1/auth/verify-email', { token: expired.token });
    expect(answer.status).toBe(400);
    expect(errorCode(answer)).toBe('token_invalid');

    const anHourAgo = new Date(Date.now() - 61 * 60 * 1000);
    const staleReset = await database.transaction((tx) =>
      issueAccountToken(tx, { userId: account.id, purpose: 'reset_password', now: anHourAgo }),
    );
    const reset = await post('/v1/auth/password-reset/confirm', { token: staleReset.token, password: newPassword });
    expect(errorCode(reset)).toBe('token_invalid');

    const resetToken = await database.transaction((tx) =>
      issueAccountToken(tx, { userId: account.id, purpose: 'reset_password' }),
    );
    const wrongPurpose = await post('/v1/auth/verify-email', { token: resetToken.token });
    expect(errorCode(wrongPurpose)).toBe('token_invalid');

    const first = await database.transaction((tx) =>
      issueAccountToken(tx, { userId: account.id, purpose: 'verify_email' }),
    );
    const second = await database.transaction((tx) =>
      issueAccountToken(tx, { userId: account.id, purpose: 'verify_email' }),
    );
    expect(errorCode(await post('/v1/auth/verify-email', { token: first.token }))).toBe('token_invalid');
    expect((await usersWithEmail(account.email))[0]?.verified).toBe(false);
    expect((await post('/v1/auth/verify-email', { token: second.token })).status).toBe(200);
    for (const issued of [expired, staleReset, resetToken, first, second]) mailedTokens.add(issued.token);
  });

  it('resends a verification email to a signed-in account, and only while unverified', async () => {
    const email = uniqueEmail('resend');
    await post('/v1/auth/signup', { email, password });
    const first = await tokenMailedTo(email, 'verify_email', 'tgv_');
    const tokens = await login(email);
    const resent = await post('/v1/auth/verify-email/resend', undefined, tokens.access_token);
    expect(resent.status).toBe(202);
    expect(resent.body).toEqual({ status: 'verification_sent', email });
    const second = await tokenMailedTo(email, 'verify_email', 'tgv_');
    expect(second).not.toBe(first);
    expect(errorCode(await post('/v1/auth/verify-email', { token: first }))).toBe('token_invalid');
    expect((await post('/v1/auth/verify-email', { token: second })).status).toBe(200);

    const again = await post('/v1/auth/verify-email/resend', undefined, tokens.access_token);
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe('email_already_verified');
    expect((await post('/v1/auth/verify-email/resend')).status).toBe(401);
  });

  it('limits sign-ups and reset requests per client address, before writing or sending anything', async () => {
    const ip = uniqueIp();
    const from = (path: string, body: unknown) =>
      fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
        body: JSON.stringify(body),
      });
    for (let attempt = 0; attempt < 10; attempt++) {
      expect((await from('/v1/auth/password-reset', { email: uniqueEmail('flood') })).status).toBe(202);
    }
    const before = (await allMail()).length;
    const email = uniqueEmail('eleventh');
    const refused = await from('/v1/auth/signup', { email, password });
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as ErrorAnswer).error.code).toBe('rate_limited');
    expect((await from('/v1/auth/password-reset', { email })).status).toBe(429);
    expect(await usersWithEmail(email)).toEqual([]);
    expect((await allMail()).length).toBe(before);
    // Another address is not affected.
    expect((await post('/v1/auth/signup', { email, password })).status).toBe(202);
  });

  it('builds links from TOLLGATE_PUBLIC_URL, else from the address the request reached, never the Host header', async () => {
    const email = uniqueEmail('host');
    const body = JSON.stringify({ email, password });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}/v1/auth/signup`,
        {
          method: 'POST',
          headers: {
            host: 'evil.example',
            'x-forwarded-host': 'evil.example',
            'x-forwarded-proto': 'https',
            'x-forwarded-for': uniqueIp(),
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(202);
    const [message] = await mailTo(email);
    expect(message?.text).not.toContain('evil.example');
    expect(message?.text).toContain(`${server.url}/v1/auth/verify-email?token=`);

    const configured = await listen(apiApp('https://api.tollgate.example').app.callback(), {
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const other = uniqueEmail('public');
      const answer = await fetch(`${configured.url}/v1/auth/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': uniqueIp() },
        body: JSON.stringify({ email: other, password }),
      });
      expect(answer.status).toBe(202);
      const [sent] = await mailTo(other);
      expect(sent?.text).toContain('https://api.tollgate.example/v1/auth/verify-email?token=tgv_');
    } finally {
      await configured.close(1_000);
    }
  });
});

describe(`password reset over HTTP (${expectedDatabaseDriver})`, () => {
  it('mails a reset token; the new password ends every session and logs in', async () => {
    const account = await newAccount('reset');
    const a = await login(account.email);
    const b = await login(account.email);

    const requested = await post('/v1/auth/password-reset', { email: account.email });
    expect(requested.status).toBe(202);
    expect(requested.body).toEqual({ status: 'reset_requested', email: account.email });
    const token = await tokenMailedTo(account.email, 'reset_password', 'tgp_');

    // A password that breaks the policy is refused and leaves the token usable.
    const weak = await post('/v1/auth/password-reset/confirm', { token, password: 'short' });
    expect(weak.status).toBe(400);
    expect((weak.body as ErrorAnswer).error.message).toBe('password: must be at least 12 characters');

    const confirmed = await post('/v1/auth/password-reset/confirm', { token, password: newPassword });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toEqual({ status: 'password_reset', sessions_revoked: 2 });

    for (const old of [a, b]) {
      expect((await call('GET', '/v1/me', undefined, old.access_token)).status).toBe(401);
      expect((await post('/v1/auth/refresh', { refresh_token: old.refresh_token })).status).toBe(401);
    }
    expect((await post('/v1/auth/login', { email: account.email, password })).status).toBe(401);
    const fresh = await login(account.email, newPassword);
    // The token proved the inbox, so the address counts as verified.
    expect(fresh.user.email_verified).toBe(true);
    expect(errorCode(await post('/v1/auth/password-reset/confirm', { token, password: newPassword }))).toBe(
      'token_invalid',
    );
    const notices = (await mailTo(account.email)).filter((message) => message.purpose === 'password_changed');
    expect(notices).toHaveLength(1);
    expect((await auditFor(account.id)).map((entry) => entry.action)).toEqual([
      'auth.login',
      'auth.login',
      'user.password_reset_requested',
      'user.password_reset',
      'auth.login_failed',
      'auth.login',
    ]);
  });

  it('only the newest reset token works', async () => {
    const account = await newAccount('twice');
    await post('/v1/auth/password-reset', { email: account.email });
    const first = await tokenMailedTo(account.email, 'reset_password', 'tgp_');
    await post('/v1/auth/password-reset', { email: account.email });
    const second = await tokenMailedTo(account.email, 'reset_password', 'tgp_');
    expect(errorCode(await post('/v1/auth/password-reset/confirm', { token: first, password: newPassword }))).toBe(
      'token_invalid',
    );
    expect((await post('/v1/auth/password-reset/confirm', { token: second, password: newPassword })).status).toBe(200);
  });

  it('answers 202 for an unknown email and sends nothing', async () => {
    const before = (await allMail()).length;
    const email = uniqueEmail('nobody');
    const answer = await post('/v1/auth/password-reset', { email });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ status: 'reset_requested', email });
    expect((await allMail()).length).toBe(before);
    // Recorded, with the typed address only as a keyed pseudonym.
    const audit = await database.query<{ outcome: string; target_id: string; row: string }>(
      `SELECT outcome, target_id, row_to_json(a)::text AS row FROM audit_log a
       WHERE action = 'user.password_reset_requested' ORDER BY seq DESC LIMIT 1`,
    );
    expect(audit.rows[0]).toMatchObject({
      outcome: 'failure',
      target_id: expect.stringMatching(/^email:[0-9a-f]{32}$/),
    });
    expect(audit.rows[0]?.row).not.toContain(email);
  });
});

describe(`profile and email change over HTTP (${expectedDatabaseDriver})`, () => {
  it('renames the signed-in account and audits it', async () => {
    const account = await newAccount('rename');
    const tokens = await login(account.email);
    const renamed = await call('PATCH', '/v1/me', { name: 'Ada Lovelace' }, tokens.access_token);
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ id: account.id, name: 'Ada Lovelace' });
    expect((await usersWithEmail(account.email))[0]?.name).toBe('Ada Lovelace');
    expect((await call('PATCH', '/v1/me', { name: '' }, tokens.access_token)).status).toBe(400);
    expect((await call('PATCH', '/v1/me', { name: 'Mallory' })).status).toBe(401);
    expect((await auditFor(account.id)).map((entry) => entry.action)).toContain('user.profile_updated');
  });

  it('changes the email after a password check and a token mailed to the new address', async () => {
    const account = await newAccount('mover');
    const tokens = await login(account.email);
    const target = uniqueEmail('moved');

    const wrong = await post(
      '/v1/me/email',
      { new_email: target, password: 'not my password at all' },
      tokens.access_token,
    );
    expect(wrong.status).toBe(403);
    expect(errorCode(wrong)).toBe('reauthentication_failed');
    expect(await mailTo(target)).toEqual([]);

    const asked = await post('/v1/me/email', { new_email: target, password }, tokens.access_token);
    expect(asked.status).toBe(202);
    expect(asked.body).toEqual({ status: 'confirmation_sent', email: target });
    const token = await tokenMailedTo(target, 'change_email', 'tge_');

    // Another account cannot use it, and trying does not use it up.
    const stranger = await login((await newAccount('stranger')).email);
    expect(errorCode(await post('/v1/me/email/confirm', { token }, stranger.access_token))).toBe('token_invalid');

    const confirmed = await post('/v1/me/email/confirm', { token }, tokens.access_token);
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ id: account.id, email: target, email_verified: true });
    expect(errorCode(await post('/v1/me/email/confirm', { token }, tokens.access_token))).toBe('token_invalid');

    const notices = (await mailTo(account.email)).filter((message) => message.purpose === 'email_changed');
    expect(notices).toHaveLength(1);
    expect(notices[0]?.text).toContain(target);
    expect((await post('/v1/auth/login', { email: account.email, password })).status).toBe(401);
    expect((await login(target)).user.id).toBe(account.id);
    expect((await auditFor(account.id)).map((entry) => entry.action)).toEqual(
      expect.arrayContaining(['user.reauthentication_failed', 'user.email_change_requested', 'user.email_changed']),
    );
  });

  it('answers 409 email_taken when the address was taken meanwhile, and changes nothing', async () => {
    const account = await newAccount('slow');
    const tokens = await login(account.email);
    const target = uniqueEmail('contested');
    await post('/v1/me/email', { new_email: target, password }, tokens.access_token);
    const token = await tokenMailedTo(target, 'change_email', 'tge_');
    await database.transaction((tx) => createUserWithPassword(tx, { email: target, password }));

    const answer = await post('/v1/me/email/confirm', { token }, tokens.access_token);
    expect(answer.status).toBe(409);
    expect(errorCode(answer)).toBe('email_taken');
    expect(await usersWithEmail(account.email)).toHaveLength(1);
    expect(await usersWithEmail(target)).toHaveLength(1);
    expect((await mailTo(account.email)).filter((message) => message.purpose === 'email_changed')).toEqual([]);
  });

  it('does not reveal that the new address has an account: same answer, a notice instead of a token', async () => {
    const account = await newAccount('curious');
    const taken = await newAccount('taken');
    const tokens = await login(account.email);
    const answer = await post('/v1/me/email', { new_email: taken.email, password }, tokens.access_token);
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ status: 'confirmation_sent', email: taken.email });
    const sent = await mailTo(taken.email);
    expect(sent.map((message) => message.purpose)).toEqual(['change_email_taken']);
    expect(sent[0]?.text.match(tokenPattern)).toBeNull();
  });
});

describe(`what is stored (${expectedDatabaseDriver})`, () => {
  it('keeps only SHA-256 hashes of mailed tokens: no token in any row of any table', async () => {
    await allMail();
    expect(mailedTokens.size).toBeGreaterThan(5);
    const tables = await database.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    const dump: string[] = [];
    for (const { table_name } of tables.rows) {
      const rows = await database.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM "${table_name}" t`);
      dump.push(...rows.rows.map((row) => row.row));
    }
    const text = dump.join('\n');
    const hashes = await database.query<{ hash: string }>(
      `SELECT encode(token_sha256, 'hex') AS hash FROM account_tokens`,
    );
    const stored = new Set(hashes.rows.map((row) => row.hash));
    for (const token of mailedTokens) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(token.slice(4));
      expect(text).not.toContain(Buffer.from(token.slice(4), 'base64url').toString('hex'));
    }
    // What is there is the hash of a mailed token, and nothing else.
    const expected = [...mailedTokens].map((token) => createHash('sha256').update(token).digest('hex'));
    for (const hash of stored) expect(expected).toContain(hash);
  });

  it('lists the account routes in the OpenAPI document and keeps the audit chain intact', async () => {
    const document = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(document.paths['/v1/auth/signup'] ?? {})).toEqual(['post']);
    expect(Object.keys(document.paths['/v1/auth/verify-email'] ?? {}).sort()).toEqual(['get', 'post']);
    expect(document.paths['/v1/auth/verify-email/resend']?.post).toBeDefined();
    expect(document.paths['/v1/auth/password-reset']?.post).toBeDefined();
    expect(document.paths['/v1/auth/password-reset/confirm']?.post).toBeDefined();
    expect(document.paths['/v1/me']?.patch).toBeDefined();
    expect(document.paths['/v1/me/email']?.post).toBeDefined();
    expect(document.paths['/v1/me/email/confirm']?.post).toBeDefined();
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
  });
});
