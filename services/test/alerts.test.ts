import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateAllAlerts, evaluateTeamAlerts } from '../src/alerts/alert-evaluation.js';
import { billingPeriod } from '../src/plans/billing-period.js';
import { createMemoryUsageCounterStore } from '../src/usage/memory-usage-counter-store.js';
import { emptyCounts } from '../src/usage/usage-counter-store.js';
import { flushUsage } from '../src/usage/usage-flusher.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

const dayMs = 86_400_000;
let testApi: TestApi;
const { account, call: api } = accountsOn(() => testApi);

let owner: SignedInAccount;
let developer: SignedInAccount;
let user: SignedInAccount;
/** Two days into the current billing period of every team made here. */
const anchor = new Date(Math.floor(Date.now() / dayMs) * dayMs - 2 * dayMs + 3_600_000);
const now = new Date(anchor.getTime() + 2 * dayMs);
const period = billingPeriod(anchor, now);
const nextPeriodNow = new Date(period.end.getTime() + 3_600_000);

interface TestTeam {
  id: string;
  name: string;
  path: string;
}

/** A team of `owner` on a plan of its own (quota of calls, overage, prices), with a webhook endpoint for quota events. */
async function teamOnPlan(plan: {
  quota: number | null;
  overageAllowed: boolean;
  overagePrices?: Record<string, unknown>;
  included?: Record<string, number>;
}): Promise<TestTeam> {
  const name = `Alerts ${randomBytes(3).toString('hex')}`;
  const created = await api(owner, 'POST', '/v1/teams', { name });
  expect(created.status).toBe(201);
  const slug = `alerts-${randomBytes(4).toString('hex')}`;
  const inserted = await testApi.database.query<{ id: string }>(
    `INSERT INTO plans (slug, name, monthly_call_quota, overage_allowed, overage_prices, included_quotas)
     VALUES ($1, $1, $2, $3, $4::jsonb, $5::jsonb) RETURNING id`,
    [
      slug,
      plan.quota,
      plan.overageAllowed,
      JSON.stringify(plan.overagePrices ?? {}),
      JSON.stringify(plan.included ?? {}),
    ],
  );
  await testApi.database.query(
    `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
     VALUES ($1, $2, 'active', 'USD', 'month', now(), now() + interval '1 month')`,
    [created.body.id, inserted.rows[0]?.id],
  );
  await testApi.database.query('UPDATE teams SET billing_anchor_at = $2 WHERE id = $1', [created.body.id, anchor]);
  const hook = await api(owner, 'POST', `/v1/teams/${created.body.id}/webhooks`, {
    url: 'http://127.0.0.1:9/alerts',
    events: ['quota.threshold_reached', 'quota.exhausted'],
  });
  expect(hook.status).toBe(201);
  return { id: created.body.id, name, path: `/v1/teams/${created.body.id}/alerts` };
}

/** Meters calls the way the gateway does: counted into a store, moved to the rollups by the flusher. */
async function meter(team: TestTeam, calls: number, at: Date = now): Promise<void> {
  const store = createMemoryUsageCounterStore();
  await store.add(
    [
      {
        minute: at.getTime() - (at.getTime() % 60_000),
        teamId: team.id,
        keyId: 'key-alerts',
        apiId: 'api-alerts',
        counts: { ...emptyCounts(), calls, status2xx: calls },
      },
    ],
    `alerts-${randomBytes(3).toString('hex')}`,
  );
  await flushUsage({ store, database: testApi.database });
}

const evaluate = (team: TestTeam, at: Date = now) =>
  evaluateTeamAlerts({ database: testApi.database, mailer: testApi.mail.mailer, now: at, teamId: team.id });

async function deliveries(team: TestTeam): Promise<string[]> {
  const result = await testApi.database.query<{ type: string }>(
    `SELECT e.type FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
     WHERE d.team_id = $1 ORDER BY e.created_at, e.type`,
    [team.id],
  );
  return result.rows.map((row) => row.type);
}

async function mailsFor(team: TestTeam): Promise<{ to: string; subject: string; text: string }[]> {
  return (await testApi.mail.parsed()).filter((message) => message.subject.startsWith(team.name));
}

beforeAll(async () => {
  testApi = await startTestApi({ webhooksAllowPrivate: true });
  [owner, developer, user] = await Promise.all([account('owner'), account('developer'), account('user')]);
});
afterAll(async () => {
  await testApi?.dispose();
});

describe(`usage alerts (${expectedDatabaseDriver})`, () => {
  it('fires 80% of calls once per billing period, by email to the owner and by webhook', async () => {
    const team = await teamOnPlan({ quota: 100, overageAllowed: true });
    const set = await api(owner, 'PUT', team.path, { quota: [{ metric: 'calls', percent: 80 }] });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({
      team_id: team.id,
      currency: 'USD',
      quota: [{ key: 'quota:calls:80', metric: 'calls', percent: 80 }],
      spend: [],
    });

    await meter(team, 79);
    expect(await evaluate(team)).toEqual([]);
    await meter(team, 2);
    expect(await evaluate(team)).toHaveLength(1);
    const mails = await mailsFor(team);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ to: owner.email, subject: `${team.name} reached 80% of its calls quota` });
    expect(mails[0]?.text).toContain('Used so far: 81 of 100 calls');
    expect(await deliveries(team)).toEqual(['quota.threshold_reached']);

    // Evaluating again, even with more usage, fires nothing more this period.
    await meter(team, 5);
    expect(await evaluate(team)).toEqual([]);
    expect(await mailsFor(team)).toHaveLength(1);
    expect(await deliveries(team)).toHaveLength(1);

    // The next billing period starts from zero and fires again once it crosses.
    expect(await evaluate(team, nextPeriodNow)).toEqual([]);
    await meter(team, 80, nextPeriodNow);
    expect(await evaluate(team, nextPeriodNow)).toHaveLength(1);
    expect(await mailsFor(team)).toHaveLength(2);
    expect(await deliveries(team)).toEqual(['quota.threshold_reached', 'quota.threshold_reached']);

    const history = await api(owner, 'GET', `${team.path}/history`);
    expect(history.status).toBe(200);
    expect(history.body.firings).toHaveLength(2);
    expect(history.body.firings[1]).toMatchObject({
      key: 'quota:calls:80',
      kind: 'quota',
      metric: 'calls',
      percent: 80,
      used: 81,
      included: 100,
      period_start: period.start.toISOString(),
      events: ['quota.threshold_reached'],
      emails_sent: 1,
    });
  });

  it('sends quota.exhausted at 100% of a capped quota, and only threshold_reached when overage is allowed', async () => {
    const capped = await teamOnPlan({ quota: 50, overageAllowed: false });
    const open = await teamOnPlan({ quota: 50, overageAllowed: true });
    for (const team of [capped, open]) {
      expect((await api(owner, 'PUT', team.path, { quota: [{ metric: 'calls', percent: 100 }] })).status).toBe(200);
      await meter(team, 50);
      expect(await evaluate(team)).toHaveLength(1);
    }
    expect((await deliveries(capped)).sort()).toEqual(['quota.exhausted', 'quota.threshold_reached']);
    expect(await deliveries(open)).toEqual(['quota.threshold_reached']);
  });

  it('sends quota.exhausted to an endpoint that subscribes to it without any alert set, once, by webhook only', async () => {
    const capped = await teamOnPlan({ quota: 50, overageAllowed: false });
    const open = await teamOnPlan({ quota: 50, overageAllowed: true });
    for (const team of [capped, open]) await meter(team, 49);
    expect(await evaluate(capped)).toEqual([]);
    for (const team of [capped, open]) await meter(team, 1);
    // The worker's sweep finds the capped team through its endpoint alone.
    await evaluateAllAlerts({ database: testApi.database, mailer: testApi.mail.mailer, now });
    expect(await deliveries(capped)).toEqual(['quota.exhausted']);
    expect(await deliveries(open)).toEqual([]);
    expect(await mailsFor(capped)).toEqual([]);
    const history = await api(owner, 'GET', `${capped.path}/history`);
    expect(history.body.firings).toHaveLength(1);
    expect(history.body.firings[0]).toMatchObject({ key: 'exhausted:calls', kind: 'quota', metric: 'calls' });
    // Once per billing period, and again in the next.
    await meter(capped, 10);
    expect(await evaluate(capped)).toEqual([]);
    await meter(capped, 50, nextPeriodNow);
    expect(await evaluate(capped, nextPeriodNow)).toHaveLength(1);
    expect(await deliveries(capped)).toEqual(['quota.exhausted', 'quota.exhausted']);
  });

  it('fires a spend threshold when the overage rated with the plan prices passes it', async () => {
    const team = await teamOnPlan({
      quota: 100,
      overageAllowed: true,
      overagePrices: { calls: { USD: { model: 'per_unit', unit_price: '0.01' } } },
    });
    const set = await api(owner, 'PUT', team.path, { spend: [{ amount: '0.50' }] });
    expect(set.body.spend).toEqual([{ key: 'spend:USD:50', amount: '0.50', amount_minor: 50, currency: 'USD' }]);
    await meter(team, 140); // 40 overage calls: $0.40
    expect(await evaluate(team)).toEqual([]);
    await meter(team, 10); // 50 overage calls: $0.50, reached
    expect(await evaluate(team)).toHaveLength(1);
    expect((await mailsFor(team))[0]?.subject).toBe(`${team.name}'s overage charges reached $0.50`);
    const history = await api(owner, 'GET', `${team.path}/history`);
    expect(history.body.firings[0]).toMatchObject({ kind: 'spend', amount: '0.50', spend: '0.50', currency: 'USD' });
  });

  it('fires once when two evaluations run at once', async () => {
    const team = await teamOnPlan({ quota: 10, overageAllowed: true });
    await api(owner, 'PUT', team.path, { quota: [{ metric: 'calls', percent: 50 }] });
    await meter(team, 6);
    const [a, b, c] = await Promise.all([evaluate(team), evaluate(team), evaluate(team)]);
    expect([...(a ?? []), ...(b ?? []), ...(c ?? [])]).toHaveLength(1);
    expect(await deliveries(team)).toHaveLength(1);
    expect(await mailsFor(team)).toHaveLength(1);
  });

  it('refuses bad thresholds with 400 and writes nothing', async () => {
    const team = await teamOnPlan({ quota: 100, overageAllowed: true });
    const before = await api(owner, 'PUT', team.path, { quota: [{ metric: 'calls', percent: 80 }] });
    expect(before.status).toBe(200);
    const bad: [unknown, RegExp][] = [
      [{ quota: [{ metric: 'calls', percent: 101 }] }, /^quota\.0\.percent: a whole percentage from 1 to 100/],
      [{ quota: [{ metric: 'calls', percent: -5 }] }, /^quota\.0\.percent/],
      [{ quota: [{ metric: 'calls', percent: 12.5 }] }, /^quota\.0\.percent/],
      [
        { quota: [{ metric: 'teleports', percent: 50 }] },
        /^quota\.0\.metric: plan alerts-[0-9a-f]+ has no quota for teleports/,
      ],
      [{ spend: [{ amount: '12.345' }] }, /^spend\.0\.amount: "12\.345" has more than 2 decimals/],
      [{ spend: [{ amount: '-1' }] }, /^spend\.0\.amount: "-1" must not be negative/],
      [{ spend: [{ amount: 'fifty' }] }, /^spend\.0\.amount/],
      [{ spend: [{ amount: '0' }] }, /^spend\.0\.amount: must be more than 0/],
      [{ spend: [{ amount: 50 }] }, /^spend\.0\.amount/],
      [{ quota: [{ metric: 'calls', percent: 90 }], spend: [{ amount: '1.001' }] }, /^spend\.0\.amount/],
    ];
    for (const [body, message] of bad) {
      const answer = await api(owner, 'PUT', team.path, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      expect(answer.body.error.message).toMatch(message);
    }
    expect((await api(owner, 'GET', team.path)).body).toEqual(before.body);

    // Another team's alerts: not found, nothing written.
    const stranger = await account('stranger');
    expect((await api(stranger, 'PUT', team.path, { quota: [{ metric: 'calls', percent: 10 }] })).status).toBe(404);
    expect((await api(stranger, 'GET', team.path)).status).toBe(404);
    expect((await api(stranger, 'DELETE', team.path)).status).toBe(404);
    expect((await api(owner, 'GET', team.path)).body).toEqual(before.body);
  });

  it('lets members read the thresholds and history, and only team admins change them', async () => {
    const team = await teamOnPlan({ quota: 100, overageAllowed: true });
    for (const [who, role] of [
      [developer, 'developer'],
      [user, 'user'],
    ] as const) {
      expect((await api(owner, 'POST', `/v1/teams/${team.id}/invitations`, { email: who.email, role })).status).toBe(
        201,
      );
      const messages = (await testApi.mail.parsed()).filter((message) => message.to === who.email);
      const token = /tollgate teams accept (tgi_[A-Za-z0-9_-]+)/.exec(messages.at(-1)?.text ?? '')?.[1];
      expect((await api(who, 'POST', '/v1/invitations/accept', { token })).status).toBe(200);
    }
    await api(owner, 'PUT', team.path, { quota: [{ metric: 'calls', percent: 90 }] });
    for (const who of [developer, user]) {
      expect((await api(who, 'GET', team.path)).status).toBe(200);
      expect((await api(who, 'GET', `${team.path}/history`)).status).toBe(200);
      const put = await api(who, 'PUT', team.path, { quota: [] });
      expect(put.status).toBe(403);
      expect(put.body.error.code).toBe('forbidden');
      expect((await api(who, 'DELETE', team.path)).status).toBe(403);
    }
    expect((await api(owner, 'GET', team.path)).body.quota).toHaveLength(1);
    // Admins see it fire by email; a user-role member does not get the mail.
    await meter(team, 95);
    expect(await evaluate(team)).toHaveLength(1);
    expect((await mailsFor(team)).map((mail) => mail.to)).toEqual([owner.email]);

    const cleared = await api(owner, 'DELETE', team.path);
    expect(cleared.body).toEqual({ removed: 1 });
    expect((await api(owner, 'GET', team.path)).body.quota).toEqual([]);
    expect((await api(owner, 'GET', `${team.path}/history`)).body.firings).toHaveLength(1);
  });
});
