import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('subscriptions');
  ({ env } = api);
  for (const [slug, price, trial] of [
    ['starter', '10.00', '0'],
    ['growth', '30.00', '0'],
    ['tryout', '20.00', '14'],
  ] as const) {
    const created = await runCli(
      ['plans', 'create', '--slug', slug, '--name', slug, '--price', `USD:month:${price}`, '--trial-days', trial],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
  }
  expect((await runCli(['teams', 'create', 'Subscriber', '--slug', 'subscriber'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'subscriber';
});

afterAll(() => api?.dispose());

describe(`tollgate subscribe and subscription (${expectedDatabaseDriver}, manual provider)`, () => {
  it('subscribes, shows, upgrades, schedules a downgrade, cancels at the period end and resumes', async () => {
    const subscribed = await runCli(['subscribe', 'starter', '--json'], env);
    expect(subscribed.code, subscribed.stderr).toBe(0);
    expect(JSON.parse(subscribed.stdout)).toMatchObject({ plan: 'starter', status: 'active', provider: 'manual' });

    const shown = await runCli(['subscription', 'show'], env);
    expect(shown.stdout).toContain('plan\tstarter (version 1)');
    expect(shown.stdout).toContain('price\t10.00 USD per month');

    const up = await runCli(['subscription', 'change', 'growth'], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(/^Prorated: \d+\.\d\d USD charged, \d+\.\d\d USD credited/);
    expect(up.stdout).toContain('plan\tgrowth (version 1)');

    const down = await runCli(['subscription', 'change', 'starter', '--json'], env);
    expect(JSON.parse(down.stdout)).toMatchObject({
      change: 'downgrade_scheduled',
      subscription: { plan: 'growth', pending_change: { plan: 'starter' } },
    });

    const cancel = await runCli(['subscription', 'cancel', '--at-period-end'], env);
    expect(cancel.stderr).toMatch(/^Cancels at .*; undo with tollgate subscription resume\./);
    expect(cancel.stdout).toContain('cancels at\t');
    const resumed = await runCli(['subscription', 'resume', '--json'], env);
    expect(JSON.parse(resumed.stdout).cancel_at_period_end).toBe(false);
  });

  it('prints the error code and a hint, and exits 1, for a refused subscription', async () => {
    const again = await runCli(['subscribe', 'tryout'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^subscription_exists: the team already has an? active subscription to growth/);
    const euro = await runCli(['subscribe', 'tryout', '--currency', 'eur', '--json', '--team', 'subscriber'], env);
    expect(euro.code).toBe(1);
    expect(JSON.parse(euro.stdout).error.code).toBe('price_not_offered');
  });

  it('cancels now, then starts a trial without a card', async () => {
    const canceled = await runCli(['subscription', 'cancel', '--json'], env);
    expect(JSON.parse(canceled.stdout).status).toBe('canceled');
    const trial = await runCli(['subscribe', 'tryout', '--json'], env);
    expect(JSON.parse(trial.stdout)).toMatchObject({ plan: 'tryout', status: 'trialing' });
  });
});
