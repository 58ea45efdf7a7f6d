import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('interval');
  ({ env } = api);
  const plans: [string, string[]][] = [
    ['flex', ['--price', 'USD:month:10.00', '--price', 'USD:year:100.00']],
    ['monthly-only', ['--price', 'USD:month:30.00', '--annual-discount', 'none']],
  ];
  for (const [slug, prices] of plans) {
    const created = await runCli(
      ['plans', 'create', '--slug', slug, '--name', slug, '--trial-days', '0', ...prices],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
  }
  expect((await runCli(['teams', 'create', 'Yearly', '--slug', 'yearly'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'yearly';
});

afterAll(() => api?.dispose());

describe(`tollgate subscription change --annual / --monthly (${expectedDatabaseDriver}, manual provider)`, () => {
  it('needs a plan or an interval, and not both intervals: usage errors, exit 2', async () => {
    const none = await runCli(['subscription', 'change'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^usage_error: give a plan to move to, --annual or --monthly/);
    const both = await runCli(['subscription', 'change', '--annual', '--monthly'], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^usage_error: /);
  });

  it('switches to annual at once with the unused month credited, then back to monthly at the end of the year', async () => {
    const subscribed = await runCli(['subscribe', 'flex', '--json'], env);
    expect(subscribed.code, subscribed.stderr).toBe(0);
    expect(JSON.parse(subscribed.stdout)).toMatchObject({ plan: 'flex', interval: 'month', amount_minor: 1000 });

    const annual = await runCli(['subscription', 'change', '--annual'], env);
    expect(annual.code, annual.stderr).toBe(0);
    expect(annual.stderr).toMatch(/^Now billed annually from \S+: \d+\.\d\d USD of the old period credited\./);
    expect(annual.stdout).toContain('plan\tflex (version 1)');
    expect(annual.stdout).toContain('price\t100.00 USD per year');

    const again = await runCli(['subscription', 'change', '--annual'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^subscription_unchanged: the team is already on flex version 1, billed annually/);

    const monthly = await runCli(['subscription', 'change', '--monthly', '--json'], env);
    expect(monthly.code, monthly.stderr).toBe(0);
    const body = JSON.parse(monthly.stdout);
    expect(body).toMatchObject({
      change: 'interval_switch_scheduled',
      subscription: { interval: 'year', pending_change: { plan: 'flex', interval: 'month', amount_minor: 1000 } },
    });
    expect(body.subscription.pending_change.at).toBe(body.subscription.current_period_end);

    const shown = await runCli(['subscription', 'show'], env);
    expect(shown.stdout).toContain('price\t100.00 USD per year');
    expect(shown.stdout).toContain(
      `pending change\tto flex, billed monthly (10.00 USD per month) at ${body.subscription.current_period_end}`,
    );
  });

  it('refuses an interval the plan has no price in, and changes nothing', async () => {
    const refused = await runCli(['subscription', 'change', 'monthly-only', '--annual'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^price_not_offered: the plan monthly-only has no annual price in USD/);
    const shown = await runCli(['subscription', 'show', '--json'], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ plan: 'flex', interval: 'year' });
  });
});
