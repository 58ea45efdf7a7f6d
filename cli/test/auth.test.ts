import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createUserWithPassword, hashPassword, openDatabase } from '@tollgate/services';
import { createTestDatabaseConfig, expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

const adaPassword = 'a long and unusual passphrase 7';
const operatorPassword = 'operator passphrase that is long 9';

let configDir: string;
let env: NodeJS.ProcessEnv;
let databaseConfig: Awaited<ReturnType<typeof createTestDatabaseConfig>>;
let running: StartedProcess | undefined;
let apiUrl = '';

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'tollgate-auth-config-'));
  databaseConfig = await createTestDatabaseConfig();
  const database = databaseConfig.value;
  env = cliEnv({
    TOLLGATE_CONFIG_DIR: configDir,
    TOLLGATE_API_PORT: '0',
    TOLLGATE_GATEWAY_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_MASTER_KEY: Buffer.alloc(32, 3).toString('base64'),
    TOLLGATE_DATA_DIR: database.driver === 'pglite' ? database.dataDir : join(configDir, 'data'),
    DATABASE_URL: database.driver === 'postgres' ? database.url : undefined,
  });
});

afterAll(async () => {
  if (running) await stop(running, 'SIGKILL');
  await databaseConfig.dispose();
  await rm(configDir, { recursive: true, force: true });
});

async function startTollgate(): Promise<{ apiUrl: string; operatorCreated: unknown }> {
  running = spawnStart(['--only', 'api'], env);
  const info = (await running.ready) as Awaited<StartedProcess['ready']> & { operator_created: unknown };
  apiUrl = info.api_url ?? '';
  return { apiUrl, operatorCreated: info.operator_created };
}

async function stopTollgate(): Promise<void> {
  if (running) expect(await stop(running)).toBe(0);
  running = undefined;
}

/** Changes the database behind Tollgate's back, while it is stopped (PGlite allows one process). */
async function withDatabase(fn: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<void>): Promise<void> {
  const db = await openDatabase(databaseConfig.value, { logger: createLogger({ level: 'silent' }) });
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

describe(`signing in with the CLI (${expectedDatabaseDriver})`, () => {
  it('signs the local CLI in as the first operator on a fresh installation, credentials 0600', async () => {
    const { operatorCreated } = await startTollgate();
    expect(operatorCreated).toEqual({ email: 'admin@localhost', credentials: join(configDir, 'credentials.json') });
    expect((await stat(join(configDir, 'credentials.json'))).mode & 0o777).toBe(0o600);

    const status = await runCli(['auth', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('as admin@localhost');
    expect(status.stdout).toContain(join(configDir, 'credentials.json'));
    const whoami = await runCli(['whoami', '--json'], env);
    expect(whoami.code).toBe(0);
    expect(JSON.parse(whoami.stdout)).toMatchObject({ email: 'admin@localhost', installation_role: 'admin' });
    const sessions = await runCli(['sessions', 'list', '--json'], env);
    expect(JSON.parse(sessions.stdout).sessions).toHaveLength(1);
    const verify = await runCli(['audit', 'verify'], env);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^Audit log intact: \d+ entries verified\.$/m);
  });

  it('logs out: the session ends and auth status exits 4', async () => {
    const logout = await runCli(['logout'], env);
    expect(logout.code).toBe(0);
    expect(logout.stdout).toContain('Logged out admin@localhost');
    const status = await runCli(['auth', 'status'], env);
    expect(status.code).toBe(4);
    expect(status.stderr).toMatch(/^not_logged_in: not logged in/);
    const whoami = await runCli(['whoami'], env);
    expect(whoami.code).toBe(4);
    expect(whoami.stderr).toContain('hint: run `tollgate login`');
    await stopTollgate();
  });

  it('creates no second operator on a later start', async () => {
    await withDatabase(async (db) => {
      await db.transaction(async (tx) => {
        await createUserWithPassword(tx, { email: 'ada@example.com', password: adaPassword, name: 'Ada' });
      });
      await db.query(`UPDATE users SET password_hash = $1 WHERE email = 'admin@localhost'`, [
        await hashPassword(operatorPassword),
      ]);
    });
    const { operatorCreated } = await startTollgate();
    expect(operatorCreated).toBeNull();
  });

  it('logs in with a password from standard input, and refuses a wrong one', async () => {
    const wrong = await runCli(
      ['login', '--email', 'ada@example.com', '--password-stdin', '--api-url', apiUrl],
      env,
      20_000,
      'nope nope nope',
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^invalid_credentials: the email or the password is wrong/);
    const right = await runCli(
      ['login', '--email', 'ada@example.com', '--password-stdin', '--api-url', apiUrl],
      env,
      20_000,
      `${adaPassword}\n`,
    );
    expect(right.code).toBe(0);
    expect(right.stdout).toContain('as ada@example.com');
    expect((await runCli(['whoami'], env)).stdout.trim()).toBe('ada@example.com');
  });

  it('refuses the audit log to a non-operator with forbidden', async () => {
    const list = await runCli(['audit', 'list'], env);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/^forbidden: this needs the permission audit:verify/);
  });

  it('without a terminal, asks for nothing and names the flag to pass', async () => {
    const result = await runCli(['login'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^usage_error: no terminal to ask for the email\nhint: pass --email/);
  });

  it('finds an audit entry changed directly in the database, naming it', async () => {
    await stopTollgate();
    await withDatabase(async (db) => {
      await db.transaction(async (tx) => {
        await tx.exec('ALTER TABLE audit_log DISABLE TRIGGER USER');
        await tx.exec(`UPDATE audit_log SET action = 'auth.login' WHERE seq = 2`);
        await tx.exec('ALTER TABLE audit_log ENABLE TRIGGER USER');
      });
    });
    await startTollgate();
    const login = await runCli(
      ['login', '--email', 'admin@localhost', '--password-stdin', '--api-url', apiUrl],
      env,
      20_000,
      operatorPassword,
    );
    expect(login.code).toBe(0);
    const verify = await runCli(['audit', 'verify'], env);
    expect(verify.code).toBe(1);
    expect(verify.stderr).toMatch(/^audit_chain_broken: audit entry 2 is broken: hash mismatch/);
    const json = await runCli(['audit', 'verify', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, broken_at: 2 });
    await stopTollgate();
  });
});
