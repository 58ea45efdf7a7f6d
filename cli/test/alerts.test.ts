import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('alerts', { TOLLGATE_BASE_CURRENCY: 'EUR' }, { only: 'api,worker' });
  ({ env } = api);
  expect((await runCli(['teams', 'create', 'Alert CLI', '--slug', 'alert-cli'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'alert-cli';
});

afterAll(() => api?.dispose());

describe(`tollgate alerts (${expectedDatabaseDriver})`, () => {
  it('sets, lists, shows the history of and clears the alerts', async () => {
    const set = await runCli(['alerts', 'set', '--quota', 'calls:80', '--quota', 'calls:100', '--spend', '50.00'], env);
    expect(set.code).toBe(0);
    expect(set.stdout).toBe('Alerts set: 80% of calls, 100% of calls, 50.00 USD of overage.\n');

    const listed = await runCli(['alerts', 'list'], env);
    expect(listed.stdout).toBe(
      'kind\tthreshold\tkey\nquota\t80% of calls\tquota:calls:80\nquota\t100% of calls\tquota:calls:100\nspend\t50.00 USD of overage\tspend:USD:5000\n',
    );
    const json = JSON.parse((await runCli(['alerts', 'list', '--json'], env)).stdout);
    expect(json).toMatchObject({
      currency: 'USD',
      quota: [{ percent: 80 }, { percent: 100 }],
      spend: [{ amount: '50.00' }],
    });

    const history = await runCli(['alerts', 'history'], env);
    expect(history.code).toBe(0);
    expect(history.stdout).toBe('');
    expect(history.stderr).toContain('No usage alert has fired yet.');
    expect(JSON.parse((await runCli(['alerts', 'history', '--json'], env)).stdout)).toEqual({ firings: [] });

    const cleared = await runCli(['alerts', 'clear', '--json'], env);
    expect(JSON.parse(cleared.stdout)).toEqual({ removed: 3 });
    expect(JSON.parse((await runCli(['alerts', 'list', '--json'], env)).stdout)).toMatchObject({
      quota: [],
      spend: [],
    });
  });

  it('exits 2 on a malformed --quota and 1 with code: message on thresholds the API refuses, setting nothing', async () => {
    expect((await runCli(['alerts', 'set', '--quota', 'calls:80'], env)).code).toBe(0);
    const malformed = await runCli(['alerts', 'set', '--quota', 'calls80'], env);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^usage_error: --quota "calls80" is not <metric>:<percent>/);
    expect((await runCli(['alerts', 'set'], env)).code).toBe(2);
    const over = await runCli(['alerts', 'set', '--quota', 'calls:101'], env);
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(/^validation_failed: quota\.0\.percent: a whole percentage from 1 to 100/);
    const metric = await runCli(['alerts', 'set', '--quota', 'teleports:50', '--json'], env);
    expect(metric.code).toBe(1);
    expect(JSON.parse(metric.stdout).error.code).toBe('validation_failed');
    const amount = await runCli(['alerts', 'set', '--spend', '1.234'], env);
    expect(amount.code).toBe(1);
    expect(amount.stderr).toMatch(/^validation_failed: spend\.0\.amount: "1\.234" has more than 2 decimals/);
    expect(JSON.parse((await runCli(['alerts', 'list', '--json'], env)).stdout).quota).toEqual([
      { key: 'quota:calls:80', metric: 'calls', percent: 80 },
    ]);
    const stranger = await runCli(['alerts', 'list', '--team', 'no-such-team'], env);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/^not_found: /);
  });
});

describe(`tollgate billing rates (${expectedDatabaseDriver})`, () => {
  it('sets and lists exchange rates to the base currency, and refuses a bad rate', async () => {
    const set = await runCli(['billing', 'rates', 'set', 'USD', '1.08', '--effective-at', '2026-01-01T00:00:00Z'], env);
    expect(set.code).toBe(0);
    expect(set.stdout).toBe('1 USD = 1.08 EUR from 2026-01-01T00:00:00.000Z.\n');
    expect((await runCli(['billing', 'rates', 'set', 'gbp', '1.17'], env)).code).toBe(0);
    const listed = await runCli(['billing', 'rates', 'list'], env);
    expect(listed.stdout).toMatch(
      /^currency\trate\tbase\teffective\nGBP\t1\.17\tEUR\t\S+\nUSD\t1\.08\tEUR\t2026-01-01T00:00:00\.000Z\n$/,
    );
    for (const bad of ['0', '-1', 'abc']) {
      const refused = await runCli(['billing', 'rates', 'set', 'USD', bad], env);
      expect(refused.code, bad).toBe(1);
      expect(refused.stderr).toMatch(/^validation_failed: rate: /);
    }
    const base = await runCli(['billing', 'rates', 'set', 'EUR', '1', '--json'], env);
    expect(JSON.parse(base.stdout).error.message).toMatch(/^currency: EUR is the base currency/);
    const json = JSON.parse((await runCli(['billing', 'rates', 'list', '--history', '--json'], env)).stdout);
    expect(json.base_currency).toBe('EUR');
    expect(json.rates).toHaveLength(2);
  });
});
