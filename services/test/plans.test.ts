import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import { loadTeamPolicy } from '../src/plans/team-policy.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);

beforeAll(async () => {
  testApi = await startTestApi();
});
afterAll(async () => {
  await testApi.dispose();
});

/** Everything a plan write touches, to prove a refused one changed nothing. */
async function catalogState(): Promise<unknown> {
  const rows = async (sql: string) => (await testApi.database.query(sql)).rows;
  return {
    plans: await rows('SELECT * FROM plans ORDER BY slug, version'),
    prices: await rows('SELECT * FROM plan_prices ORDER BY plan_id, currency, interval'),
    audit: await rows("SELECT count(*)::int AS n FROM audit_log WHERE action LIKE 'plan.%'"),
  };
}

const slug = (label: string) => `${label}-${randomBytes(3).toString('hex')}`;

/** A team with a live subscription to the plan version `planId`. */
async function subscribedTeam(owner: SignedInAccount, planId: string): Promise<string> {
  const team = await call(owner, 'POST', '/v1/teams', { name: `Team ${randomBytes(3).toString('hex')}` });
  expect(team.status).toBe(201);
  await testApi.database.query(
    `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
     VALUES ($1, $2, 'active', 'USD', 'month', now(), now() + interval '1 month')`,
    [team.body.id, planId],
  );
  return team.body.id as string;
}

const starter = (planSlug: string) => ({
  slug: planSlug,
  name: 'Starter',
  description: 'A plan for tests',
  prices: [
    { currency: 'USD', interval: 'month', amount: '49.00' },
    { currency: 'EUR', interval: 'month', amount: '45' },
    { currency: 'GBP', interval: 'year', amount: '390.50' },
  ],
  annual_discount_percent: 15,
  included: { calls: 100_000, bandwidth: 10_000_000_000 },
  overage_allowed: true,
  overage: {
    calls: {
      USD: {
        model: 'graduated',
        tiers: [
          { up_to: 1_000_000, unit_price: '0.0005' },
          { up_to: null, unit_price: '0.0003' },
        ],
      },
      EUR: { model: 'per_unit', unit_price: '0.0004' },
      GBP: { model: 'package', package_size: 1000, package_price: '0.30' },
    },
  },
  rate_limits: { per_second: 20, per_hour: 10_000 },
  entitlements: { sso: true, max_seats: 10, support: 'email' },
});

describe(`the plan catalog over HTTP (${expectedDatabaseDriver})`, () => {
  let operator: SignedInAccount;
  let member: SignedInAccount;

  beforeAll(async () => {
    [operator, member] = await Promise.all([account('operator', 'admin'), account('member')]);
  });

  it('creates a plan with prices, the annual rule, quotas, overage and entitlements, and shows it', async () => {
    const planSlug = slug('starter');
    const created = await call(operator, 'POST', '/v1/plans', starter(planSlug));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({
      slug: planSlug,
      version: 1,
      latest_version: 1,
      name: 'Starter',
      trial_days: 14,
      is_default: false,
      annual_discount_percent: '15',
      included: { calls: 100_000, bandwidth: 10_000_000_000 },
      overage_allowed: true,
      rate_limits: { per_second: 20, per_minute: null, per_hour: 10_000, per_day: null },
      entitlements: { sso: true, max_seats: 10, support: 'email' },
      archived_at: null,
      subscribers: 0,
    });
    // 12 x 49.00 x 0.85 = 499.80 and 12 x 45 x 0.85 = 459.00, derived; GBP's annual price is explicit.
    expect(created.body.prices).toEqual([
      { currency: 'EUR', interval: 'month', amount: '45.00', amount_minor: 4500, source: 'explicit' },
      { currency: 'EUR', interval: 'year', amount: '459.00', amount_minor: 45900, source: 'derived' },
      { currency: 'GBP', interval: 'year', amount: '390.50', amount_minor: 39050, source: 'explicit' },
      { currency: 'USD', interval: 'month', amount: '49.00', amount_minor: 4900, source: 'explicit' },
      { currency: 'USD', interval: 'year', amount: '499.80', amount_minor: 49980, source: 'derived' },
    ]);
    const stored = await testApi.database.query<{ interval: string; amount_minor: string }>(
      `SELECT interval, amount_minor::text FROM plan_prices WHERE plan_id = $1 ORDER BY currency, interval`,
      [created.body.id],
    );
    // What the operator gave, not what is derived from it.
    expect(stored.rows).toEqual([
      { interval: 'month', amount_minor: '4500' },
      { interval: 'year', amount_minor: '39050' },
      { interval: 'month', amount_minor: '4900' },
    ]);

    const shown = await call(member, 'GET', `/v1/plans/${planSlug}`);
    expect(shown.status).toBe(200);
    const { subscribers: _s, subscribers_all_versions: _a, ...publicView } = created.body;
    expect(shown.body).toEqual(publicView);
    expect((await call(operator, 'GET', `/v1/plans/${planSlug}?version=1`)).body).toEqual(created.body);
    expect((await call(operator, 'GET', `/v1/plans/${planSlug}?version=2`)).status).toBe(404);
    expect((await call(operator, 'GET', `/v1/plans/${planSlug}?version=x`)).body.error.code).toBe('validation_failed');
    expect((await call(operator, 'GET', '/v1/plans/no-such-plan')).body.error.code).toBe('not_found');
  });

  it('rounds a derived annual price half up once, to the minor unit', async () => {
    const planSlug = slug('round');
    const created = await call(operator, 'POST', '/v1/plans', {
      slug: planSlug,
      name: 'Rounding',
      // 12 x 9.99 x (1 - 0.125) = 104.895 -> 104.90
      prices: [{ currency: 'USD', interval: 'month', amount: '9.99' }],
      annual_discount_percent: '12.5',
    });
    expect(created.status).toBe(201);
    expect(created.body.prices).toContainEqual({
      currency: 'USD',
      interval: 'year',
      amount: '104.90',
      amount_minor: 10490,
      source: 'derived',
    });
  });

  it('lists the newest version of each plan, with the seeded free default, archived ones only when asked', async () => {
    const planSlug = slug('listed');
    expect((await call(operator, 'POST', '/v1/plans', { slug: planSlug, name: 'Listed' })).status).toBe(201);
    const list = await call(member, 'GET', '/v1/plans');
    expect(list.status).toBe(200);
    const slugs = list.body.plans.map((plan: { slug: string }) => plan.slug);
    expect(slugs).toContain('free');
    expect(slugs).toContain(planSlug);
    expect([...slugs].sort()).toEqual(slugs);
    const free = list.body.plans.find((plan: { slug: string }) => plan.slug === 'free');
    expect(free).toMatchObject({ is_default: true, included: { calls: 10_000 }, prices: [] });
    expect(free.subscribers).toBeUndefined();

    const archived = await call(operator, 'POST', `/v1/plans/${planSlug}/archive`);
    expect(archived.status).toBe(200);
    expect(archived.body.archived_at).toEqual(expect.any(String));
    const after = await call(member, 'GET', '/v1/plans');
    expect(after.body.plans.map((plan: { slug: string }) => plan.slug)).not.toContain(planSlug);
    const all = await call(member, 'GET', '/v1/plans?archived=true');
    expect(all.body.plans.map((plan: { slug: string }) => plan.slug)).toContain(planSlug);
  });

  it('changes a plan in place while nobody subscribes to it', async () => {
    const planSlug = slug('inplace');
    const created = await call(operator, 'POST', '/v1/plans', starter(planSlug));
    const updated = await call(operator, 'PATCH', `/v1/plans/${planSlug}`, {
      name: 'Starter Plus',
      rate_limits: { per_second: 30 },
      entitlements: { sso: false },
    });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body).toMatchObject({
      new_version: false,
      from_version: 1,
      changed: ['name', 'rate_limits', 'entitlements'],
    });
    expect(updated.body.plan).toMatchObject({
      id: created.body.id,
      version: 1,
      latest_version: 1,
      name: 'Starter Plus',
      rate_limits: { per_second: 30, per_minute: null, per_hour: 10_000, per_day: null },
      entitlements: { sso: false },
      prices: created.body.prices,
    });
    const versions = await testApi.database.query('SELECT version FROM plans WHERE slug = $1', [planSlug]);
    expect(versions.rowCount).toBe(1);

    // The same values again: nothing changes, nothing is written or audited.
    const before = await catalogState();
    const same = await call(operator, 'PATCH', `/v1/plans/${planSlug}`, { name: 'Starter Plus' });
    expect(same.status).toBe(200);
    expect(same.body.changed).toEqual([]);
    expect(await catalogState()).toEqual(before);
  });

  it('writes a new version when the current one has subscribers, who stay on theirs', async () => {
    const planSlug = slug('versioned');
    const created = await call(operator, 'POST', '/v1/plans', starter(planSlug));
    const teamId = await subscribedTeam(member, created.body.id);
    expect((await call(operator, 'GET', `/v1/plans/${planSlug}`)).body.subscribers).toBe(1);

    const updated = await call(operator, 'PATCH', `/v1/plans/${planSlug}`, {
      prices: [{ currency: 'USD', interval: 'month', amount: '59.00' }],
      included: { calls: 200_000 },
      overage: { calls: { USD: { model: 'per_unit', unit_price: '0.0004' } } },
    });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body).toMatchObject({
      new_version: true,
      from_version: 1,
      changed: ['prices', 'included', 'overage'],
    });
    expect(updated.body.plan).toMatchObject({
      version: 2,
      latest_version: 2,
      subscribers: 0,
      subscribers_all_versions: 1,
      included: { calls: 200_000 },
      // Unchanged fields carry over.
      name: 'Starter',
      entitlements: { sso: true, max_seats: 10, support: 'email' },
      annual_discount_percent: '15',
    });
    expect(updated.body.plan.id).not.toBe(created.body.id);
    expect(updated.body.plan.prices.map((price: { amount: string }) => price.amount)).toEqual(['59.00', '601.80']);

    const v1 = await call(operator, 'GET', `/v1/plans/${planSlug}?version=1`);
    expect(v1.body).toMatchObject({ id: created.body.id, version: 1, latest_version: 2, subscribers: 1 });
    expect(v1.body.prices).toEqual(created.body.prices);
    // The gateway keeps enforcing version 1 for the subscribed team.
    const policy = await loadTeamPolicy(testApi.database, teamId);
    expect(policy).toMatchObject({ planSlug, monthlyCallQuota: 100_000, limits: { second: 20, hour: 10_000 } });

    // Version 2 has no subscriber: the next change is made in place.
    const again = await call(operator, 'PATCH', `/v1/plans/${planSlug}`, { trial_days: 7 });
    expect(again.body).toMatchObject({ new_version: false, plan: { version: 2, trial_days: 7 } });
    const list = await call(operator, 'GET', '/v1/plans');
    expect(list.body.plans.find((plan: { slug: string }) => plan.slug === planSlug)).toMatchObject({
      version: 2,
      trial_days: 7,
    });
  });

  it('moves the default to the new version of the default plan, so teams without a subscription get the change', async () => {
    const free = await call(operator, 'GET', '/v1/plans/free');
    const subscribed = await subscribedTeam(member, free.body.id);
    const unsubscribed = await call(member, 'POST', '/v1/teams', { name: `Bare ${randomBytes(3).toString('hex')}` });
    const updated = await call(operator, 'PATCH', '/v1/plans/free', { included: { calls: 20_000 } });
    expect(updated.body).toMatchObject({ new_version: true, plan: { version: 2, is_default: true } });
    expect((await call(operator, 'GET', '/v1/plans/free?version=1')).body.is_default).toBe(false);
    expect((await loadTeamPolicy(testApi.database, unsubscribed.body.id))?.monthlyCallQuota).toBe(20_000);
    expect((await loadTeamPolicy(testApi.database, subscribed))?.monthlyCallQuota).toBe(10_000);

    const before = await catalogState();
    const refused = await call(operator, 'POST', '/v1/plans/free/archive');
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('plan_is_default');
    expect(await catalogState()).toEqual(before);
  });

  it('archives a plan: every version, subscribers kept; a second archive changes nothing; a change is refused', async () => {
    const planSlug = slug('archived');
    const created = await call(operator, 'POST', '/v1/plans', starter(planSlug));
    const teamId = await subscribedTeam(member, created.body.id);
    await call(operator, 'PATCH', `/v1/plans/${planSlug}`, { name: 'Starter 2' });
    const archived = await call(operator, 'POST', `/v1/plans/${planSlug}/archive`);
    expect(archived.status).toBe(200);
    expect(archived.body).toMatchObject({ version: 2, archived_at: expect.any(String) });
    expect((await call(operator, 'GET', `/v1/plans/${planSlug}?version=1`)).body.archived_at).toEqual(
      archived.body.archived_at,
    );
    expect((await loadTeamPolicy(testApi.database, teamId))?.planSlug).toBe(planSlug);

    const before = await catalogState();
    const twice = await call(operator, 'POST', `/v1/plans/${planSlug}/archive`);
    expect(twice.status).toBe(200);
    expect(twice.body.archived_at).toBe(archived.body.archived_at);
    const change = await call(operator, 'PATCH', `/v1/plans/${planSlug}`, { name: 'Revived' });
    expect(change.status).toBe(409);
    expect(change.body.error.code).toBe('plan_archived');
    expect(await catalogState()).toEqual(before);
  });

  it('seeds Basic, Pro and Enterprise once; seeding again changes nothing', async () => {
    const first = await call(operator, 'POST', '/v1/plans/seed');
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.created).toEqual(['basic', 'pro', 'enterprise']);
    expect(first.body.existing).toEqual([]);
    const pro = first.body.plans.find((plan: { slug: string }) => plan.slug === 'pro');
    expect(pro).toMatchObject({
      included: { calls: 100_000 },
      overage_allowed: true,
      overage: {
        calls: {
          USD: {
            model: 'graduated',
            tiers: [
              { up_to: 1_000_000, unit_price: '0.0005' },
              { up_to: null, unit_price: '0.0003' },
            ],
          },
        },
      },
    });
    expect(new Set(pro.prices.map((price: { currency: string }) => price.currency))).toEqual(
      new Set(['USD', 'EUR', 'GBP']),
    );
    for (const plan of first.body.plans) {
      const currencies = new Set(plan.prices.map((price: { currency: string }) => price.currency));
      expect(currencies, plan.slug).toEqual(new Set(['USD', 'EUR', 'GBP']));
    }

    // An operator edits an example; seeding again leaves it as edited.
    await call(operator, 'PATCH', '/v1/plans/basic', { trial_days: 30 });
    const before = await catalogState();
    const second = await call(operator, 'POST', '/v1/plans/seed');
    expect(second.status).toBe(200);
    expect(second.body.created).toEqual([]);
    expect(second.body.existing).toEqual(['basic', 'pro', 'enterprise']);
    expect(await catalogState()).toEqual(before);
    expect((await call(operator, 'GET', '/v1/plans/basic')).body.trial_days).toBe(30);
  });

  it('lets only operators write: a plain user gets 403 forbidden and nothing is written', async () => {
    const planSlug = slug('nope');
    await call(operator, 'POST', '/v1/plans', { slug: planSlug, name: 'Existing' });
    const before = await catalogState();
    const attempts = [
      await call(member, 'POST', '/v1/plans', { slug: slug('mine'), name: 'Mine' }),
      await call(member, 'PATCH', `/v1/plans/${planSlug}`, { name: 'Mine' }),
      await call(member, 'POST', `/v1/plans/${planSlug}/archive`),
      await call(member, 'POST', '/v1/plans/seed'),
    ];
    for (const attempt of attempts) {
      expect(attempt.status).toBe(403);
      expect(attempt.body.error).toMatchObject({ code: 'forbidden', details: { permission: 'plans:manage' } });
    }
    expect(await catalogState()).toEqual(before);
    expect((await call(undefined, 'GET', '/v1/plans')).status).toBe(401);
  });

  it('refuses bad input with 400 validation_failed, naming the problem, and writes nothing', async () => {
    const existing = slug('target');
    await call(operator, 'POST', '/v1/plans', starter(existing));
    const base = { slug: slug('bad'), name: 'Bad' };
    const usd = (amount: unknown) => ({ ...base, prices: [{ currency: 'USD', interval: 'month', amount }] });
    const cases: [string, unknown, RegExp][] = [
      ['a negative price', usd('-5.00'), /^prices\.0\.amount: a decimal amount/],
      ['a malformed price', usd('4,99'), /^prices\.0\.amount: a decimal amount/],
      ['a price finer than a cent', usd('4.999'), /^prices\.0\.amount: USD amounts have at most 2 decimal places/],
      ['a price as a float', usd(4.99), /^prices\.0\.amount: /],
      [
        'an unknown currency',
        { ...base, prices: [{ currency: 'XYZ', interval: 'month', amount: '5' }] },
        /^prices\.0\.currency: /,
      ],
      [
        'a price given twice',
        {
          ...base,
          prices: [
            { currency: 'USD', interval: 'month', amount: '5' },
            { currency: 'USD', interval: 'month', amount: '6' },
          ],
        },
        /^prices\.1: USD month is given twice/,
      ],
      ['a bad slug', { ...base, slug: 'Not A Slug' }, /^slug: use 1 to 63 lower-case letters/],
      ['a discount of 100%', { ...base, annual_discount_percent: 100 }, /^annual_discount_percent: a percentage/],
      [
        'an unknown metric format',
        { ...base, included: { 'Band Width': 5 } },
        /^included\.Band Width: "Band Width" is not a metric name/,
      ],
      ['a negative quota', { ...base, included: { calls: -1 } }, /^included\.calls: must not be negative/],
      [
        'tiers that do not go up',
        {
          ...base,
          included: { calls: 0 },
          overage: {
            calls: {
              USD: {
                model: 'graduated',
                tiers: [
                  { up_to: 1000, unit_price: '0.1' },
                  { up_to: 500, unit_price: '0.05' },
                  { up_to: null, unit_price: '0.01' },
                ],
              },
            },
          },
        },
        /^overage\.calls\.USD\.tiers\.1\.up_to: tiers go up/,
      ],
      [
        'an overage price in an unknown currency',
        { ...base, included: { calls: 0 }, overage: { calls: { JPY: { model: 'per_unit', unit_price: '1' } } } },
        /^overage\.calls\.JPY: "JPY" is not a currency: an unknown currency/,
      ],
      [
        'an overage price for a metric with no quota',
        { ...base, overage: { storage: { USD: { model: 'per_unit', unit_price: '0.1' } } } },
        /^overage\.storage: has a price but included\.storage is not set/,
      ],
      [
        'an overage price missing a plan currency',
        {
          ...base,
          prices: [
            { currency: 'USD', interval: 'month', amount: '5' },
            { currency: 'EUR', interval: 'month', amount: '5' },
          ],
          included: { calls: 10 },
          overage: { calls: { USD: { model: 'per_unit', unit_price: '0.1' } } },
        },
        /^overage\.calls: has no EUR price \(the plan is priced in EUR, USD\)/,
      ],
      [
        'an unknown model',
        { ...base, included: { calls: 0 }, overage: { calls: { USD: { model: 'stairs' } } } },
        /^overage\.calls\.USD/,
      ],
      ['a bad entitlement name', { ...base, entitlements: { 'SSO!': true } }, /^entitlements\.SSO!: /],
      ['an unknown field', { ...base, colour: 'red' }, /colour/],
    ];
    const before = await catalogState();
    for (const [label, body, message] of cases) {
      const created = await call(operator, 'POST', '/v1/plans', body);
      expect(created.status, label).toBe(400);
      expect(created.body.error.code, label).toBe('validation_failed');
      expect(created.body.error.message, label).toMatch(message);
      const { slug: _slug, ...patch } = body as Record<string, unknown>;
      if (label !== 'a bad slug') {
        const updated = await call(operator, 'PATCH', `/v1/plans/${existing}`, patch);
        expect(updated.status, `${label} (PATCH)`).toBe(400);
      }
    }
    const empty = await call(operator, 'PATCH', `/v1/plans/${existing}`, {});
    expect(empty.body.error).toMatchObject({
      code: 'validation_failed',
      message: 'body: give at least one field to change',
    });
    const taken = await call(operator, 'POST', '/v1/plans', { slug: existing, name: 'Again' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('slug_taken');
    const missing = await call(operator, 'PATCH', '/v1/plans/no-such-plan', { name: 'X' });
    expect(missing.body.error.code).toBe('not_found');
    expect(await catalogState()).toEqual(before);
  });

  it('audits every write in the hash chain', async () => {
    const entries = await testApi.database.query<{ action: string }>(
      "SELECT DISTINCT action FROM audit_log WHERE action LIKE 'plan.%' ORDER BY action",
    );
    expect(entries.rows.map((row) => row.action)).toEqual(['plan.archived', 'plan.created', 'plan.updated']);
    expect((await verifyAuditChain(testApi.database)).ok).toBe(true);
  });

  it('describes the plan routes in the OpenAPI document', async () => {
    const document = (await call(undefined, 'GET', '/v1/openapi.json')).body;
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(['/v1/plans', '/v1/plans/{plan}', '/v1/plans/{plan}/archive', '/v1/plans/seed']),
    );
    expect(document.paths['/v1/plans'].post.operationId).toBe('createPlan');
  });
});
