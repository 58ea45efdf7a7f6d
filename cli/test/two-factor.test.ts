import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createUserWithPassword, openDatabase } from '@tollgate/services';
import { createTestDatabaseConfig, expectedDatabaseDriver } from '@tollgate/services/testing';
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

/** The code an authenticator app shows during `step` (unix seconds / 30). */
function totpAt(step: number): string {
  return generateSync({ secret, epoch: step * 30, period: 30, digits: 6, algorithm: 'sha1' });
}

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'tollgate-2fa-config-'));
  databaseConfig = await createTestDatabaseConfig();
  const database = databaseConfig.value;
  env = cliEnv({
    TOLLGATE_CONFIG_DIR: configDir,
    TOLLGATE_API_PORT: '0',
    TOLLGATE_GATEWAY_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'),
    TOLLGATE_DATA_DIR: database.driver === 'pglite' ? database.dataDir : join(configDir, 'data'),
    DATABASE_URL: database.driver === 'postgres' ? database.url : undefined,
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
