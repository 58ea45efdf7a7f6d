import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { setExchangeRate } from '../src/billing/exchange-rates.js';
import { recordRevenueSnapshot } from '../src/billing/revenue-metrics.js';
import {
  cancelSubscription,
  changeSubscriptionPlan,
  runSubscriptionLifecycle,
  subscribe,
  systemActor,
} from '../src/billing/subscriptions.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import { createTeam } from '../src/teams/teams.js';
import { accountsOn } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);
let operator: string;
let member: string;
let memberId: string;

let clock = new Date('2026-01-05T12:00:00Z');
const service = () => ({
  database: testApi.database,
  provider: createManualBillingProvider(),
  graceDays: 7,
  logger: silentLogger(),
  now: () => clock,
});

async function team(label: string) {
  const created = await testApi.database.transaction((tx) =>
    createTeam(tx, { name: `${label} ${randomBytes(3).toString('hex')}`, creatorUserId: memberId }),
  );
  return { id: created.id, name: created.name };
}

async function plan(
  slug: string,
  trialDays: number,
  prices: { currency: 'USD' | 'EUR'; interval: 'month' | 'year'; amount: string }[],
) {
  await testApi.database.transaction((tx) => createPlan(tx, { slug, name: slug, trial_days: trialDays, prices }));
}

beforeAll(async () => {
  testApi = await startTestApi();
  operator = (await account('metrics', 'admin')).token;
  const user = await account('metrics');
  member = user.token;
  memberId = user.id;
});
afterAll(async () => {
  await testApi?.dispose();
});

describe(`revenue metrics (${expectedDatabaseDriver})`, () => {
  it('gives exact MRR, ARR, counts, conversion, churn and ARPU per day, EUR converted at the rate of the day', async () => {
    await plan('basic', 0, [
      { currency: 'USD', interval: 'month', amount: '10.00' },
      { currency: 'EUR', interval: 'month', amount: '9.00' },
    ]);
    await plan('yearly', 0, [{ currency: 'USD', interval: 'year', amount: '100.00' }]);
    await plan('trial', 1, [{ currency: 'USD', interval: 'month', amount: '20.00' }]);
    await testApi.database.transaction(async (tx) => {
      await setExchangeRate(tx, {
        currency: 'EUR',
        rate: '0.92',
        baseCurrency: 'USD',
        effectiveAt: new Date('2026-01-01T00:00:00Z'),
      });
      await setExchangeRate(tx, {
        currency: 'EUR',
        rate: '1.1',
        baseCurrency: 'USD',
        effectiveAt: new Date('2026-01-07T00:00:00Z'),
      });
    });
    const [a, b, c, d, e] = [await team('a'), await team('b'), await team('c'), await team('d'), await team('e')];
    const sub = (t: { id: string; name: string }, slug: string, currency: 'USD' | 'EUR', interval: 'month' | 'year') =>
      subscribe(service(), { team: t, plan: slug, currency, interval, actor: systemActor });

    // Day 1: A $10/month, B $100/year, C €9/month, D and E on a one-day trial.
    clock = new Date('2026-01-05T12:00:00Z');
    await sub(a, 'basic', 'USD', 'month');
    await sub(b, 'yearly', 'USD', 'year');
    await sub(c, 'basic', 'EUR', 'month');
    await sub(d, 'trial', 'USD', 'month');
    await sub(e, 'trial', 'USD', 'month');
    await recordRevenueSnapshot(testApi.database, { now: clock });
    // The job runs every hour: a second run the same day replaces the day's record, adds nothing.
    expect(await recordRevenueSnapshot(testApi.database, { now: clock })).toEqual({
      day: '2026-01-05',
      subscriptions: 5,
    });
    const stored = await testApi.database.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM subscription_daily_snapshots WHERE day = '2026-01-05'",
    );
    expect(stored.rows[0]?.n).toBe(5);

    // Day 2: E cancels its trial, A cancels, D's trial ends and it pays.
    clock = new Date('2026-01-06T12:00:01Z');
    await cancelSubscription(service(), { teamId: e.id, atPeriodEnd: false, actor: systemActor });
    await cancelSubscription(service(), { teamId: a.id, atPeriodEnd: false, actor: systemActor });
    await runSubscriptionLifecycle(service());
    await recordRevenueSnapshot(testApi.database, { now: clock });

    // Day 3: the EUR rate moved to 1.1 at midnight; D asks for a downgrade at its period end.
    clock = new Date('2026-01-07T12:00:00Z');
    await changeSubscriptionPlan(service(), { team: d, plan: 'basic', actor: systemActor });
    await recordRevenueSnapshot(testApi.database, { now: clock });

    // A month on: the day before D's period end, and the day of it.
    clock = new Date('2026-02-05T13:00:00Z');
    await runSubscriptionLifecycle(service());
    await recordRevenueSnapshot(testApi.database, { now: clock });
    clock = new Date('2026-02-06T13:00:00Z');
    await runSubscriptionLifecycle(service());
    await recordRevenueSnapshot(testApi.database, { now: clock });

    const january = await call(operator, 'GET', '/v1/billing/metrics?from=2026-01-04&to=2026-01-07');
    expect(january.status).toBe(200);
    expect(january.body).toMatchObject({ base_currency: 'USD', from: '2026-01-04', to: '2026-01-07' });
    const [none, one, two, three] = january.body.days;
    expect(none).toMatchObject({ day: '2026-01-04', recorded: false, mrr_minor: null, logo_churn: null });
    // 1000 + 10000/12 + 900 × 0.92 = 2661.33… → $26.61; ARPU 2661.33… / 3 = 887.11… → $8.87.
    expect(one).toMatchObject({
      day: '2026-01-05',
      recorded: true,
      mrr_minor: 2661,
      mrr: '$26.61',
      arr_minor: 31932,
      arr: '$319.32',
      subscriptions: { trialing: 2, active: 3, past_due: 0, unpaid: 0 },
      paying_teams: 3,
      arpu_minor: 887,
      trial_conversion: null,
      logo_churn: null,
      revenue_churn: null,
    });
    // 10000/12 + 828 + 2000 = 3661.33… → $36.61; 2 of 5 canceled; $10.00 of $26.61 lost; 1 of 2 trials paid.
    expect(two).toMatchObject({
      day: '2026-01-06',
      mrr_minor: 3661,
      arr_minor: 43932,
      subscriptions: { trialing: 0, active: 3 },
      paying_teams: 3,
      arpu_minor: 1220,
      trial_conversion: { numerator: 1, denominator: 2, rate: '0.5000' },
      logo_churn: { numerator: 2, denominator: 5, rate: '0.4000' },
      revenue_churn: { numerator: 1000, denominator: 2661, rate: '0.3758' },
    });
    // €9 at 1.1 = $9.90: MRR moves with the rate, which is no churn.
    expect(three).toMatchObject({
      day: '2026-01-07',
      mrr_minor: 3823,
      trial_conversion: { numerator: 0, denominator: 0, rate: null },
      logo_churn: { numerator: 0, denominator: 3, rate: '0.0000' },
      revenue_churn: { numerator: 0, denominator: 3661, rate: '0.0000' },
    });

    const february = await call(operator, 'GET', '/v1/billing/metrics?from=2026-02-06&to=2026-02-06');
    // D's downgrade from $20 to $10 is $10.00 of revenue churn out of $38.23.
    expect(february.body.days).toEqual([
      expect.objectContaining({
        day: '2026-02-06',
        mrr_minor: 2823,
        logo_churn: { numerator: 0, denominator: 3, rate: '0.0000' },
        revenue_churn: { numerator: 1000, denominator: 3823, rate: '0.2616' },
      }),
    ]);
  });

  it('is for operators only', async () => {
    const refused = await call(member, 'GET', '/v1/billing/metrics');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
  });

  it('refuses bad ranges with validation_failed', async () => {
    for (const query of [
      'from=2026-01-07&to=2026-01-05',
      'from=2026-13-01',
      'to=yesterday',
      'from=2026-02-30',
      'from=2024-01-01&to=2026-01-01',
    ]) {
      const refused = await call(operator, 'GET', `/v1/billing/metrics?${query}`);
      expect(refused.status, query).toBe(400);
      expect(refused.body.error.code, query).toBe('validation_failed');
    }
  });
});
