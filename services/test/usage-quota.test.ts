import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserWithPassword } from '../src/identity/users.js';
import { billingPeriod } from '../src/plans/billing-period.js';
import { createMemoryUsageCounterStore } from '../src/usage/memory-usage-counter-store.js';
import { emptyCounts } from '../src/usage/usage-counter-store.js';
import { flushUsage } from '../src/usage/usage-flusher.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

const password = 'quota test passphrase long 1';
const dayMs = 86_400_000;
let testApi: TestApi;
let token: string;

async function getJson(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${testApi.server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function createTeam(name: string): Promise<{ id: string; slug: string }> {
  const response = await fetch(`${testApi.server.url}/v1/teams`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `${name} ${randomBytes(3).toString('hex')}` }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; slug: string };
}

async function subscribe(
  teamId: string,
  plan: { quota: number | null; overage: boolean },
): Promise<{ slug: string; planId: string }> {
  const slug = `quota-${randomBytes(4).toString('hex')}`;
  const inserted = await testApi.database.query<{ id: string }>(
    `INSERT INTO plans (slug, name, monthly_call_quota, overage_allowed) VALUES ($1, $1, $2, $3) RETURNING id`,
    [slug, plan.quota, plan.overage],
  );
  const planId = (inserted.rows[0] as { id: string }).id;
  await testApi.database.query(
    `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
     VALUES ($1, $2, 'active', 'USD', 'month', now(), now() + interval '1 month')`,
    [teamId, planId],
  );
  return { slug, planId };
}

beforeAll(async () => {
  testApi = await startTestApi();
  const email = `quota.${randomBytes(4).toString('hex')}@example.com`;
  await testApi.database.transaction((tx) => createUserWithPassword(tx, { email, password }));
  const response = await fetch(`${testApi.server.url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  token = ((await response.json()) as { access_token: string }).access_token;
});
afterAll(async () => {
  await testApi?.dispose();
});

describe(`quota in GET /v1/teams/:team/usage (${expectedDatabaseDriver})`, () => {
  it("counts the calls of the team's current billing period from the rollups, and what is left of the plan's quota", async () => {
    const team = await createTeam('Quota');
    const plan = await subscribe(team.id, { quota: 100, overage: true });
    // The period starts three days ago at 10:30:15.5 UTC: a partial first day, whole days, today.
    const now = Date.now();
    const anchor = new Date(now - (now % dayMs) - 3 * dayMs + 37_815_500);
    await testApi.database.query('UPDATE teams SET billing_anchor_at = $2 WHERE id = $1', [team.id, anchor]);
    const period = billingPeriod(anchor, new Date(now));
    expect(period.start).toEqual(anchor);

    const minute = (ms: number) => ms - (ms % 60_000);
    const cell = (at: number, calls: number, overage = 0, teamId = team.id) => ({
      minute: minute(at),
      teamId,
      keyId: 'key-q',
      apiId: 'api-q',
      counts: { ...emptyCounts(), calls, status2xx: calls, overageCalls: overage },
    });
    const store = createMemoryUsageCounterStore();
    await store.add(
      [
        // Before the period (the previous one): not counted.
        cell(anchor.getTime() - 120_000, 7),
        // The first, partial day (minute rollup).
        cell(anchor.getTime() + 60_000, 3, 1),
        // A whole day (day rollup).
        cell(anchor.getTime() - (anchor.getTime() % dayMs) + dayMs + 12 * 3_600_000, 20),
        // Now (minute rollup of today).
        cell(now, 5),
        // Another team's calls.
        cell(now, 50, 0, 'another-team'),
      ],
      'quota-test',
    );
    await flushUsage({ store, database: testApi.database });

    const answer = await getJson(`/v1/teams/${team.slug}/usage`);
    expect(answer.status).toBe(200);
    expect(answer.body.quota).toEqual({
      plan: plan.slug,
      limit: 100,
      used_in_period: 28,
      remaining: 72,
      overage_calls: 1,
      overage_allowed: true,
      period_start: period.start.toISOString(),
      period_end: period.end.toISOString(),
    });
    // The quota is the billing period's, whatever range the rest of the answer covers.
    const lastHour = await getJson(
      `/v1/teams/${team.id}/usage?group_by=hour&from=${encodeURIComponent(new Date(now - 3_600_000).toISOString())}`,
    );
    expect(lastHour.body.totals).toMatchObject({ calls: 5 });
    expect(lastHour.body.quota).toMatchObject({ used_in_period: 28, remaining: 72 });
  });

  it('never goes below zero left, and says when the plan has no quota or the team has no subscription', async () => {
    const over = await createTeam('Over');
    await subscribe(over.id, { quota: 2, overage: false });
    const store = createMemoryUsageCounterStore();
    await store.add(
      [
        {
          minute: Date.now() - (Date.now() % 60_000),
          teamId: over.id,
          keyId: 'k',
          apiId: 'a',
          counts: { ...emptyCounts(), calls: 4 },
        },
      ],
      'quota-over',
    );
    await flushUsage({ store, database: testApi.database });
    expect((await getJson(`/v1/teams/${over.id}/usage`)).body.quota).toMatchObject({
      limit: 2,
      used_in_period: 4,
      remaining: 0,
      overage_allowed: false,
    });

    const unlimited = await createTeam('Unlimited');
    await subscribe(unlimited.id, { quota: null, overage: false });
    expect((await getJson(`/v1/teams/${unlimited.id}/usage`)).body.quota).toMatchObject({
      limit: null,
      used_in_period: 0,
      remaining: null,
    });

    // No subscription: the default plan (free, 10,000 calls a month in migration 0014).
    const onDefault = await createTeam('Default');
    expect((await getJson(`/v1/teams/${onDefault.id}/usage`)).body.quota).toMatchObject({
      plan: 'free',
      limit: 10_000,
      used_in_period: 0,
      remaining: 10_000,
      overage_allowed: false,
    });
  });
});
