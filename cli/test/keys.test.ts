import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

/** The operator's CLI, signed in by `tollgate start`. */
let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('keys');
  ({ env } = api);
  expect((await runCli(['teams', 'create', 'Key CLI', '--slug', 'key-cli'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'key-cli';
});

afterAll(() => api?.dispose());

describe(`tollgate keys (${expectedDatabaseDriver})`, () => {
  it('creates a key printed alone on stdout, lists and shows it without the secret, rotates and revokes it', async () => {
    const created = await runCli(
      ['keys', 'create', '--name', 'worker', '--method', 'get', '--allow-ip', '10.0.0.0/8', '--expires-in', '30d'],
      env,
    );
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^tg_live_[A-Za-z0-9]{16}_[A-Za-z0-9]{43}\n$/);
    expect(created.stderr).toMatch(/^Created the live key tg_live_[A-Za-z0-9]{16}\.\.\. \(id [0-9a-f-]{36}, expires /);
    const key = created.stdout.trim();
    const prefix = key.split('_').slice(0, 3).join('_');
    const secret = key.split('_')[3] as string;

    const listed = await runCli(['keys', 'list'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${prefix}\tworker\tactive\tall\t`);
    expect(listed.stdout).not.toContain(secret);

    const shown = await runCli(['keys', 'show', prefix], env);
    expect(shown.stdout).toContain('methods\tGET\n');
    expect(shown.stdout).toContain('allowed ips\t10.0.0.0/8\n');
    expect(shown.stdout).not.toContain(secret);

    const rotated = await runCli(['keys', 'rotate', prefix, '--grace', '1h', '--json'], env);
    expect(rotated.code).toBe(0);
    const body = JSON.parse(rotated.stdout) as { key: string; prefix: string; previous_secret_expires_at: string };
    expect(body.prefix).toBe(prefix);
    expect(body.key).not.toBe(key);
    expect(Date.parse(body.previous_secret_expires_at)).toBeGreaterThan(Date.now() + 3_500_000);

    const revoked = await runCli(['keys', 'revoke', prefix, '--yes'], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`Revoked ${prefix}.\n`);
    expect((await runCli(['keys', 'show', prefix, '--json'], env)).stdout).toMatch(/"revoked_at": "\d{4}-/);
  });

  it('exits 2 naming --yes when revoking without a terminal, and on a malformed duration, before any call', async () => {
    const revoke = await runCli(['keys', 'revoke', 'tg_live_AAAAAAAAAAAAAAAA'], env);
    expect(revoke.code).toBe(2);
    expect(revoke.stderr).toContain('--yes');
    const create = await runCli(['keys', 'create', '--expires-in', '3 months'], env);
    expect(create.code).toBe(2);
    expect(create.stderr).toMatch(/^usage_error: --expires-in must be/);
    const rotate = await runCli(['keys', 'rotate', 'x', '--grace', 'soon'], env);
    expect(rotate.code).toBe(2);
  });

  it('prints the API refusal as code: message', async () => {
    const bad = await runCli(['keys', 'create', '--allow-ip', '10.0.0.1/8'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^validation_failed: allowed_cidrs\.0: "10\.0\.0\.1\/8" has bits set/);
  });
});
