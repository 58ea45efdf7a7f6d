import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  browse,
  createTestDatabaseConfig,
  expectedDatabaseDriver,
  startGitHubServer,
  startOidcProvider,
  type TestGitHub,
  type TestOidcProvider,
} from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, cliEnv, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

let configDir: string;
let env: NodeJS.ProcessEnv;
let databaseConfig: Awaited<ReturnType<typeof createTestDatabaseConfig>>;
let running: StartedProcess | undefined;
let github: TestGitHub;
let op: TestOidcProvider;
/** The account the GitHub login made. */
let accountId = '';

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'tollgate-oauth-cli-'));
  databaseConfig = await createTestDatabaseConfig();
  github = await startGitHubServer();
  op = await startOidcProvider();
  const database = databaseConfig.value;
  env = cliEnv({
    TOLLGATE_CONFIG_DIR: configDir,
    TOLLGATE_API_PORT: '0',
    TOLLGATE_GATEWAY_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'),
    TOLLGATE_DATA_DIR: database.driver === 'pglite' ? database.dataDir : join(configDir, 'data'),
    DATABASE_URL: database.driver === 'postgres' ? database.url : undefined,
    TOLLGATE_GITHUB_CLIENT_ID: github.clientId,
    TOLLGATE_GITHUB_CLIENT_SECRET: github.clientSecret,
    TOLLGATE_GITHUB_URL: github.url,
    TOLLGATE_GITHUB_API_URL: github.apiUrl,
    TOLLGATE_GOOGLE_CLIENT_ID: 'google-cli-client',
    TOLLGATE_GOOGLE_CLIENT_SECRET: 'google-cli-secret-0123456789',
    TOLLGATE_GOOGLE_ISSUER: op.issuer,
  });
  running = spawnStart(['--only', 'api'], env);
  const info = await running.ready;
  env.TOLLGATE_API_URL = info.api_url ?? '';
  op.configure([
    {
      client_id: 'google-cli-client',
      client_secret: 'google-cli-secret-0123456789',
      redirect_uris: [`${info.api_url}/v1/auth/oauth/callback`],
    },
  ]);
});

afterAll(async () => {
  if (running) await stop(running, 'SIGKILL');
  await github?.close();
  await op?.close();
  await databaseConfig?.dispose();
  await rm(configDir, { recursive: true, force: true });
});

/**
 * Runs `tollgate <args>` without a terminal, plays the person's browser on the URL it prints, and
 * returns how it ended.
 */
async function loginThroughBrowser(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  let browsed: Promise<unknown> | undefined;
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    const url = /^\s+(http\S+)$/m.exec(stderr)?.[1];
    if (url && !browsed) browsed = browse(url);
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  await browsed;
  return { code, stdout, stderr };
}

describe(`tollgate login --provider (${expectedDatabaseDriver})`, () => {
  it('logs in with GitHub through the browser and stores the session', async () => {
    const email = `cli.octo.${Date.now()}@example.com`;
    github.nextLogin({
      id: 424242,
      login: 'cli-octo',
      name: 'CLI Octo',
      emails: [{ email, primary: true, verified: true }],
    });
    const result = await loginThroughBrowser(['login', '--provider', 'github', '--no-browser', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Open this URL in a browser on this machine to continue with GitHub/);
    expect(JSON.parse(result.stdout).user.email).toBe(email);
    accountId = JSON.parse(result.stdout).user.id;
    const whoami = await runCli(['whoami', '--json'], env);
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(JSON.parse(whoami.stdout).email).toBe(email);
    const identities = await runCli(['account', 'identities', '--json'], env);
    expect(JSON.parse(identities.stdout).identities.map((i: { provider: string }) => i.provider)).toEqual(['github']);
  });

  it('links Google to the signed-in account, then logs in with it', async () => {
    const email = `cli.google.${Date.now()}@example.com`;
    op.nextLogin({ sub: `g-${Date.now()}`, email, email_verified: true, name: 'G' });
    const linked = await loginThroughBrowser(['account', 'link', '--provider', 'google', '--no-browser', '--json']);
    expect(linked.code, linked.stderr).toBe(0);
    expect(JSON.parse(linked.stdout).linked.provider).toBe('google');
    const again = await loginThroughBrowser(['login', '--provider', 'google', '--no-browser', '--json']);
    expect(again.code, again.stderr).toBe(0);
    // Same account as the GitHub login above, not a new one for the Google email.
    expect(accountId).not.toBe('');
    expect(JSON.parse(again.stdout).user.id).toBe(accountId);
    const identities = await runCli(['account', 'identities', '--json'], env);
    expect(JSON.parse(identities.stdout).identities.map((i: { provider: string }) => i.provider)).toEqual([
      'github',
      'google',
    ]);
  });

  it('reports the provider refusing, and fails fast without a terminal or without a team', async () => {
    github.nextLogin('deny');
    const denied = await loginThroughBrowser(['login', '--provider', 'github', '--no-browser']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/oauth_denied: .*access_denied/);

    const noTty = await runCli(['login', '--provider', 'github'], env);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(/--no-browser/);
    const noTeam = await runCli(['login', '--provider', 'sso', '--no-browser'], env);
    expect(noTeam.code).toBe(2);
    expect(noTeam.stderr).toMatch(/--team/);
    const unknown = await runCli(['login', '--provider', 'myspace'], env);
    expect(unknown.code).toBe(2);
  });
});
