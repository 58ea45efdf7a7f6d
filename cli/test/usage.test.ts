import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;
let apiUrl: string;

beforeAll(async () => {
  api = await startApi('usage');
  ({ env, apiUrl } = api);
});

afterAll(() => api?.dispose());

describe(`tollgate usage (${expectedDatabaseDriver})`, () => {
  it('shows what was reported for the team, exact in --json and readable in the table', async () => {
    expect((await runCli(['teams', 'create', 'Usage Co', '--json'], env)).code).toBe(0);
    // An upstream reports with an operator's personal access token (usage:report).
    const token = (await runCli(['tokens', 'create', '--name', 'storage-reporter'], env)).stdout.trim();
    const at = new Date(Date.now() - 60_000).toISOString();
    const reported = await fetch(`${apiUrl}/v1/usage`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        team: 'usage-co',
        metric: 'storage_bytes',
        quantity: 1_234_567,
        at,
        idempotency_key: 'storage-today',
      }),
    });
    expect(reported.status).toBe(201);

    const json = await runCli(['usage', '--json'], env);
    expect(json.code).toBe(0);
    const usage = JSON.parse(json.stdout);
    expect(usage).toMatchObject({
      team: 'usage-co',
      group_by: 'day',
      totals: { calls: 0, request_bytes: 0, response_bytes: 0, overage_calls: 0 },
      // No subscription: the default plan's quota, none of it used.
      quota: { plan: 'free', limit: 10_000, used_in_period: 0, remaining: 10_000, overage_allowed: false },
    });
    expect(usage.metrics).toEqual([
      expect.objectContaining({ day: at.slice(0, 10), metric: 'storage_bytes', sum: 1_234_567, last: 1_234_567 }),
    ]);

    const table = await runCli(['usage', '--group-by', 'hour'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^hour\tcalls\tin\tout\toverage\terrors\tavg ms$/m);
    expect(table.stdout).toMatch(/^total\t0\t0 B\t0 B\t0\t0\t-$/m);
    expect(table.stdout).toMatch(/^quota\t10000 of 10000 calls left \(plan free, then refused \(429\); 0 used\)/m);
    expect(table.stdout).toMatch(new RegExp(`^${at.slice(0, 10)}\\tstorage_bytes\\t1234567\\t`, 'm'));
    expect(table.stderr).toContain('No calls between');
  });

  it('refuses a bad grouping as a usage error and a bad date as the API says', async () => {
    const grouping = await runCli(['usage', '--group-by', 'week'], env);
    expect(grouping.code).toBe(2);
    const date = await runCli(['usage', '--from', 'yesterday', '--json'], env);
    expect(date.code).toBe(1);
    expect(JSON.parse(date.stdout).error.code).toBe('validation_failed');
  });
});
