import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createUserWithPassword, openDatabase } from '@tollgate/services';
import {
  createTestDatabaseConfig,
  expectedDatabaseDriver,
  startTwilioServer,
  type TwilioServer,
} from '@tollgate/services/testing';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

const email = 'hopper@example.com';
const password = 'a compiler is a fine thing 1952';

let configDir: string;
let env: NodeJS.ProcessEnv;
let databaseConfig: Awaited<ReturnType<typeof createTestDatabaseConfig>>;
let running: StartedProcess | undefined;
let apiUrl = '';
let secret = '';
let confirmedStep = 0;
let recoveryCodes: string[] = [];
let twilio: TwilioServer;
const phone = '+15557654321';

/** The code an authenticator app shows during `step` (unix seconds / 30). */
function totpAt(step: number): string {
  return generateSync({ secret, epoch: step * 30, period: 30, digits: 6, algorithm: 'sha1' });
}

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'tollgate-2fa-config-'));
  databaseConfig = await createTestDatabaseConfig();
  twilio = await startTwilioServer();
  const database = databaseConfig.value;
  env = cliEnv({
    TOLLGATE_CONFIG_DIR: configDir,
    TOLLGATE_API_PORT: '0',
    TOLLGATE_GATEWAY_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'),
    TOLLGATE_DATA_DIR: database.driver === 'pglite' ? database.dataDir : join(configDir, 'data'),
    DATABASE_URL: database.driver === 'postgres' ? database.url : undefined,
    TWILIO_ACCOUNT_SID: twilio.accountSid,
    TWILIO_AUTH_TOKEN: twilio.authToken,
    TWILIO_FROM: twilio.from,
    TWILIO_API_BASE: twilio.url,
  });
  // The first start creates the schema (and the first operator); the account is added while stopped,
  // since PGlite allows one process.
  running = spawnStart(['--only', 'api'], env);
  await running.ready;
  expect(await stop(running)).toBe(0);
  const db = await openDatabase(database, { logger: createLogger({ level: 'silent' }) });
  try {
    await db.transaction((tx) => createUserWithPassword(tx, { email, password, name: 'Grace' }));
  } finally {
    await db.close();
  }
  running = spawnStart(['--only', 'api'], env);
  apiUrl = (await running.ready).api_url ?? '';
});

afterAll(async () => {
  if (running) await stop(running, 'SIGKILL');
  await databaseConfig.dispose();
  await twilio.close();
  await rm(configDir, { recursive: true, force: true });
});

function login(extra: string[] = [], overrides: Record<string, string> = {}) {
  return runCli(
    ['login', '--email', email, '--password-stdin', '--api-url', apiUrl, ...extra],
    { ...env, ...overrides },
    20_000,
    password,
  );
}

describe(`two-factor authentication with the CLI (${expectedDatabaseDriver})`, () => {
  it('enables 2FA in two runs without a terminal: the secret first, then --code', async () => {
    expect((await login()).code).toBe(0);
    const started = await runCli(['2fa', 'enable', '--json'], env);
    expect(started.code).toBe(0);
    const pending = JSON.parse(started.stdout) as { totp: string; secret: string; otpauth_uri: string };
    expect(pending.totp).toBe('pending');
    expect(pending.otpauth_uri).toContain(`secret=${pending.secret}`);
    expect(started.stderr).toContain('tollgate 2fa enable --code');
    secret = pending.secret;

    const wrong = await runCli(['2fa', 'enable', '--code', '000000'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^validation_failed: code: the code does not match/);

    confirmedStep = Math.floor(Date.now() / 30_000);
    const confirmed = await runCli(['2fa', 'enable', '--code', totpAt(confirmedStep)], env);
    expect(confirmed.code).toBe(0);
    recoveryCodes = confirmed.stdout.trim().split('\n');
    expect(recoveryCodes).toHaveLength(10);
    expect(confirmed.stderr).toContain('not shown again');
  });

  it('replaces the recovery codes with --code', async () => {
    const replaced = await runCli(['2fa', 'recovery-codes', '--code', totpAt(confirmedStep + 1), '--json'], env);
    expect(replaced.code).toBe(0);
    const fresh = (JSON.parse(replaced.stdout) as { recovery_codes: string[] }).recovery_codes;
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(recoveryCodes[0]);
    recoveryCodes = fresh;
    const noCode = await runCli(['2fa', 'recovery-codes'], env);
    expect(noCode.code).toBe(2);
    expect(noCode.stderr).toMatch(/hint: pass --code/);
  });

  it('asks login for the second factor: --code or TOLLGATE_2FA_CODE, never a prompt without a terminal', async () => {
    expect((await runCli(['logout'], env)).code).toBe(0);
    const noCode = await login();
    expect(noCode.code).toBe(2);
    expect(noCode.stderr).toMatch(/^usage_error: this account uses two-factor authentication/);
    expect(noCode.stderr).toContain('hint: pass --code (or TOLLGATE_2FA_CODE)');
    expect((await runCli(['whoami'], env)).code).toBe(4);

    const wrong = await login(['--code', 'aaaaa-bbbbb']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^two_factor_invalid: the code is wrong/);

    const right = await login([], { TOLLGATE_2FA_CODE: recoveryCodes[0] ?? '' });
    expect(right.code).toBe(0);
    expect(right.stdout).toContain(`as ${email}`);
    expect((await runCli(['whoami'], env)).stdout.trim()).toBe(email);
  });

  it('disables 2FA with the password and a code', async () => {
    const noCode = await runCli(['2fa', 'disable'], { ...env, TOLLGATE_PASSWORD: password });
    expect(noCode.code).toBe(2);
    expect(noCode.stderr).toMatch(/hint: pass --code/);
    const wrongPassword = await runCli(['2fa', 'disable', '--code', recoveryCodes[1] ?? ''], {
      ...env,
      TOLLGATE_PASSWORD: 'not the password at all',
    });
    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stderr).toMatch(/^reauthentication_failed: the password is wrong/);

    const off = await runCli(
      ['2fa', 'disable', '--password-stdin', '--code', recoveryCodes[1] ?? '', '--json'],
      env,
      20_000,
      password,
    );
    expect(off.code).toBe(0);
    expect(JSON.parse(off.stdout)).toEqual({ two_factor: 'off' });
    expect((await runCli(['logout'], env)).code).toBe(0);
    expect((await login()).code).toBe(0);
  });
});

describe(`SMS codes with the CLI (${expectedDatabaseDriver})`, () => {
  it('adds a phone number in two runs without a terminal: --phone sends a code, --code confirms it', async () => {
    expect((await runCli(['whoami'], env)).code).toBe(0);
    const mixed = await runCli(['2fa', 'enable', '--method', 'totp', '--phone', phone], env);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/^usage_error: --phone is for SMS codes/);
    const noPhone = await runCli(['2fa', 'enable', '--method', 'sms'], env);
    expect(noPhone.code).toBe(2);
    expect(noPhone.stderr).toMatch(/hint: pass --phone/);
    const invalid = await runCli(['2fa', 'enable', '--phone', '555 1234'], env);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^invalid_phone: phone: must be a mobile number in international format/);

    const started = await runCli(['2fa', 'enable', '--phone', phone, '--json'], env);
    expect(started.code).toBe(0);
    expect(JSON.parse(started.stdout)).toMatchObject({ sms: 'pending', phone: '+1 *** *** 4321' });
    expect(started.stderr).toContain('tollgate 2fa enable --method sms --code');
    const code = twilio.lastCode(phone) ?? '';
    expect(code).toMatch(/^\d{6}$/);

    const wrong = await runCli(
      ['2fa', 'enable', '--method', 'sms', '--code', code === '000000' ? '000001' : '000000'],
      env,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^validation_failed: code: the code does not match/);
    const confirmed = await runCli(['2fa', 'enable', '--method', 'sms', '--code', code], env);
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toBe('SMS codes are on: a login can be finished with a code sent to +1 *** *** 4321.\n');
  });

  it('turns SMS codes off with the password alone', async () => {
    const wrong = await runCli(['2fa', 'disable', '--method', 'sms'], {
      ...env,
      TOLLGATE_PASSWORD: 'not the password at all',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^reauthentication_failed: the password is wrong/);
    const off = await runCli(
      ['2fa', 'disable', '--method', 'sms', '--password-stdin', '--json'],
      env,
      20_000,
      password,
    );
    expect(off.code).toBe(0);
    expect(JSON.parse(off.stdout)).toEqual({ sms: 'off', methods: [] });
  });

  it('never texts a code for a login without a terminal to type it in', async () => {
    expect((await runCli(['2fa', 'enable', '--phone', phone], env)).code).toBe(0);
    const code = twilio.lastCode(phone) ?? '';
    expect((await runCli(['2fa', 'enable', '--method', 'sms', '--code', code], env)).code).toBe(0);
    expect((await runCli(['logout'], env)).code).toBe(0);
    const sent = twilio.messages.length;
    const noTerminal = await login();
    expect(noTerminal.code).toBe(2);
    expect(noTerminal.stderr).toMatch(
      /^usage_error: this account gets its second factor by text message, which needs a terminal/,
    );
    expect(twilio.messages.length).toBe(sent);
    expect((await runCli(['whoami'], env)).code).toBe(4);
  });
});
