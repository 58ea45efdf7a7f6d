import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configVariables } from '@tollgate/services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, closedUrl as findClosedUrl, runCli } from './support/run-cli.js';

let configDir: string;
/** URLs nothing listens on. */
let closedUrl: string;
let otherClosedUrl: string;
beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'tollgate-config-'));
  closedUrl = await findClosedUrl();
  otherClosedUrl = await findClosedUrl();
});
afterAll(() => rm(configDir, { recursive: true, force: true }));

const env = () => cliEnv({ TOLLGATE_CONFIG_DIR: configDir });

describe('tollgate', () => {
  it('--version prints the name and version', async () => {
    const result = await runCli(['--version'], env());
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^tollgate\/\d+\.\d+\.\d+ /);
  });

  it('--help lists the commands and the global flags', async () => {
    const result = await runCli(['--help'], env());
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/start\s+Run Tollgate/);
    expect(result.stdout).toMatch(/status\s+Show whether Tollgate is ready/);
    const start = await runCli(['start', '--help'], env());
    expect(start.code).toBe(0);
    for (const text of [
      '--api-port',
      'TOLLGATE_API_PORT',
      'TOLLGATE_GATEWAY_PORT',
      '--only',
      'GLOBAL FLAGS',
      '--json',
      '--profile',
      '--api-url',
      'TOLLGATE_API_URL',
    ]) {
      expect(start.stdout).toContain(text);
    }
  });

  it('documents every setting in `start --help` and in docs/configuration.md', async () => {
    const help = (await runCli(['start', '--help'], env())).stdout;
    const docs = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const variable of [...configVariables, 'TOLLGATE_ONLY']) {
      expect(help, `start --help lacks ${variable}`).toContain(variable);
      expect(docs, `docs/configuration.md lacks ${variable}`).toContain(`\`${variable}\``);
    }
  });

  it('exits 2 with usage_error for an unknown command or flag', async () => {
    const command = await runCli(['launch'], env());
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^usage_error: "launch" is not a tollgate command\nhint: /);
    const flag = await runCli(['status', '--colour'], env());
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^usage_error: Nonexistent flag: --colour\nhint: see tollgate status --help/);
    // A value the flag's parser refuses is the user's mistake too, not a bug.
    const value = await runCli(['audit', 'list', '--limit', 'many'], env());
    expect(value.code).toBe(2);
    expect(value.stderr).toMatch(
      /^usage_error: --limit: Expected an integer but received: many\nhint: see tollgate audit list --help/,
    );
  });

  it('prints a usage error as one JSON document on stdout with --json', async () => {
    const result = await runCli(['status', '--json', '--bogus'], env());
    expect(result.code).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'usage_error' } });
  });
});

describe('tollgate status', () => {
  it('exits 1 with api_unreachable and a hint when nothing answers', async () => {
    const result = await runCli(['status', '--api-url', closedUrl], env());
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(
      result.stderr.startsWith(`api_unreachable: could not reach ${closedUrl} (ECONNREFUSED)\nhint: start Tollgate`),
    ).toBe(true);
  });

  it('prints the failure as JSON on stdout with --json (TOLLGATE_JSON works too)', async () => {
    const result = await runCli(
      ['status'],
      cliEnv({ TOLLGATE_CONFIG_DIR: configDir, TOLLGATE_API_URL: closedUrl, TOLLGATE_JSON: '1' }),
    );
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      error: { code: 'api_unreachable', message: expect.stringContaining(closedUrl), hint: expect.any(String) },
    });
  });

  it('refuses an --api-url that is not http(s) as a usage error', async () => {
    const result = await runCli(['status', '--api-url', 'ftp://example'], env());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage_error: --api-url must be an http:// or https:// URL');
  });

  it('takes the API URL from the named profile in the config dir', async () => {
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({ profiles: { staging: { api_url: otherClosedUrl } } }),
    );
    const staging = await runCli(['status', '--profile', 'staging'], env());
    expect(staging.code).toBe(1);
    expect(staging.stderr).toContain(`could not reach ${otherClosedUrl}`);
    const missing = await runCli(['status', '--profile', 'prod'], env());
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^profile_not_found: no profile "prod".*\nhint: known profiles: staging/);
  });
});
