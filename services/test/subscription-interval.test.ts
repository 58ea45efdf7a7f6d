import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { listInvoices, markInvoicePaid } from '../src/billing/invoices.js';
import { closeBillingPeriod } from '../src/billing/period-close.js';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents } from '../src/billing/stripe-webhooks.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import {
  changeSubscriptionPlan,
  getSubscription,
  runSubscriptionLifecycle,
  subscribe,
  subscriptionBody,
} from '../src/billing/subscriptions.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import type { Database } from '../src/storage/database.js';
import { createTeam } from '../src/teams/teams.js';
import { emptyCounts } from '../src/usage/usage-counter-store.js';
import { addToRollups } from '../src/usage/usage-rollups.js';
import { callApi, type Json, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

const password = 'interval switch passphrase 1';
const tag = () => randomBytes(3).toString('hex');
const actor = { actorLabel: 'test' };

type Account = SignedInAccount;

/** A plan at $10.00 a month or $100.00 a year, 1,000 calls included, $0.01 a call beyond. */
async function meteredPlan(database: Database, input: { annual?: boolean; trialDays?: number } = {}) {
  const slug = `metered-${tag()}`;
  await database.transaction((tx) =>
    createPlan(tx, {
      slug,
      name: 'Metered',
      trial_days: input.trialDays ?? 0,
      prices: [
        { currency: 'USD', interval: 'month', amount: '10.00' },
        ...(input.annual === false ? [] : [{ currency: 'USD' as const, interval: 'year' as const, amount: '100.00' }]),
      ],
      included: { calls: 1000 },
      overage_allowed: true,
      overage: { calls: { USD: { model: 'per_unit', unit_price: '0.01' } } },
    }),
  );
  return slug;
}

async function newTeam(database: Database) {
  const user = await database.transaction((tx) =>
    createUserWithPassword(tx, { email: `o.${tag()}@example.com`, password }),
  );
  return database.transaction((tx) => createTeam(tx, { name: `Team ${tag()}`, creatorUserId: user.id }));
}

/** `calls` calls of the team in the minute at `at`, as the usage flusher writes them. */
async function recordCalls(database: Database, teamId: string, at: Date, calls: number) {
  const counts = { ...emptyCounts(), calls, status2xx: calls };
  await database.transaction((tx) =>
    addToRollups(tx, [{ minute: at.getTime(), teamId, keyId: 'key', apiId: 'api', counts }]),
  );
}

const manual = createManualBillingProvider();
const service = (database: Database, now: Date) => ({
  database,
  provider: manual,
  graceDays: 7,
  logger: silentLogger(),
  now: () => now,
});

describe(`switching between monthly and annual billing, manual provider (${expectedDatabaseDriver})`, () => {
  let api: TestApi;
  let owner: Account;

  beforeAll(async () => {
    api = await startTestApi();
    owner = await signUp(api, 'owner');
  });
  afterAll(() => api?.dispose());

  it('monthly → annual: at once, a new yearly period from now, the unused month credited, the cut month still rated once', async () => {
    const { database } = api;
    const plan = await meteredPlan(database);
    const team = await newTeam(database);
    const march = new Date('2026-03-01T00:00:00Z');
    await subscribe(service(database, march), {
      team: { id: team.id, name: team.name },
      plan,
      interval: 'month',
      currency: 'USD',
      actor,
    });
    // 1,500 calls in the monthly period: 500 beyond the 1,000 included.
    await recordCalls(database, team.id, new Date('2026-03-05T10:00:00Z'), 1500);
    const switchAt = new Date('2026-03-16T00:00:00Z');
    const result = await changeSubscriptionPlan(service(database, switchAt), {
      team: { id: team.id, name: team.name },
      interval: 'year',
      actor,
    });
    expect(result.kind).toBe('interval_switched');
    if (result.kind !== 'interval_switched') return;
    // 16 of March's 31 days unused: 1,000 × 16 / 31 = 516.13 cents, credited against the annual fee.
    expect(result.proration).toEqual({ creditMinor: 516, chargeMinor: 0, netMinor: -516 });
    expect(subscriptionBody(result.subscription)).toMatchObject({
      interval: 'year',
      amount_minor: 10_000,
      current_period_start: '2026-03-16T00:00:00.000Z',
      current_period_end: '2027-03-16T00:00:00.000Z',
      pending_change: null,
    });
    const anchor = await database.query<{ billing_anchor_at: Date }>(
      'SELECT billing_anchor_at FROM teams WHERE id = $1',
      [team.id],
    );
    expect(anchor.rows[0]?.billing_anchor_at.toISOString()).toBe('2026-03-16T00:00:00.000Z');
    // The trigger recorded the cut monthly period, ending at the switch.
    const periods = await database.query<{ billing_interval: string; period_start: Date; period_end: Date }>(
      'SELECT billing_interval, period_start, period_end FROM billing_periods WHERE team_id = $1',
      [team.id],
    );
    expect(
      periods.rows.map((row) => [row.billing_interval, row.period_start.toISOString(), row.period_end.toISOString()]),
    ).toEqual([['month', '2026-03-01T00:00:00.000Z', '2026-03-16T00:00:00.000Z']]);
    const audit = await database.query<{ details: Record<string, unknown> }>(
      "SELECT details FROM audit_log WHERE team_id = $1 AND action = 'subscription.interval_switched'",
      [team.id],
    );
    expect(audit.rows[0]?.details).toMatchObject({ from_interval: 'month', to_interval: 'year' });

    // 1,200 calls in the first month of the annual period: 200 beyond the included 1,000.
    await recordCalls(database, team.id, new Date('2026-03-20T10:00:00Z'), 1200);
    await closeBillingPeriod(database, { now: new Date('2026-03-16T00:05:00Z'), provider: manual });
    await closeBillingPeriod(database, { now: new Date('2026-03-16T00:06:00Z'), provider: manual });
    const first = await listInvoices(database, team.id);
    expect(first).toHaveLength(1);
    // The cut month: its fee and the overage of its 1,500 calls (500 × $0.01), nothing of the year.
    expect(first[0]?.periodStart.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(first[0]?.totalMinor).toBe(1000n + 500n);
    // Paid: an invoice left unpaid past its due date would stop the renewal (past_due).
    await markInvoicePaid(service(database, new Date('2026-03-20T00:00:00Z')), {
      invoiceId: first[0]?.id as string,
      actor,
    });

    await closeBillingPeriod(database, { now: new Date('2027-03-16T00:05:00Z'), provider: manual });
    const invoices = await listInvoices(database, team.id);
    expect(invoices).toHaveLength(2);
    const annual = invoices.find((invoice) => invoice.periodStart.toISOString() === '2026-03-16T00:00:00.000Z');
    // The year: its fee, only its own 200 calls of overage (the cut month's 500 are not billed again),
    // less the credit for the unused month.
    expect(annual?.totalMinor).toBe(10_000n + 200n - 516n);
  });

  it('annual → monthly: waits for the end of the paid year as a pending change that carries the interval', async () => {
    const { database } = api;
    const plan = await meteredPlan(database);
    const team = await newTeam(database);
    await subscribe(service(database, new Date('2026-01-01T00:00:00Z')), {
      team: { id: team.id, name: team.name },
      plan,
      interval: 'year',
      currency: 'USD',
      actor,
    });
    const result = await changeSubscriptionPlan(service(database, new Date('2026-02-01T00:00:00Z')), {
      team: { id: team.id, name: team.name },
      interval: 'month',
      actor,
    });
    expect(result.kind).toBe('interval_switch_scheduled');
    if (result.kind === 'checkout') return;
    expect(subscriptionBody(result.subscription)).toMatchObject({
      interval: 'year',
      amount_minor: 10_000,
      pending_change: { plan, amount_minor: 1000, interval: 'month', at: '2027-01-01T00:00:00.000Z' },
    });
    const prorations = await database.query('SELECT 1 FROM subscription_prorations WHERE team_id = $1', [team.id]);
    expect(prorations.rows).toHaveLength(0);
    // Nothing moves before the year ends.
    await runSubscriptionLifecycle({ database, logger: silentLogger(), now: () => new Date('2026-12-31T23:00:00Z') });
    expect((await getSubscription(database, team.id))?.interval).toBe('year');
    await runSubscriptionLifecycle({ database, logger: silentLogger(), now: () => new Date('2027-01-01T00:01:00Z') });
    const after = await getSubscription(database, team.id);
    expect(after && subscriptionBody(after)).toMatchObject({
      interval: 'month',
      amount_minor: 1000,
      current_period_start: '2027-01-01T00:00:00.000Z',
      current_period_end: '2027-02-01T00:00:00.000Z',
      pending_change: null,
    });
    const year = await database.query<{ billing_interval: string; amount_minor: string }>(
      'SELECT billing_interval, amount_minor::text FROM billing_periods WHERE team_id = $1',
      [team.id],
    );
    expect(year.rows).toEqual([{ billing_interval: 'year', amount_minor: '10000' }]);
  });

  it('a trialing subscription switches at once either way, without proration, and keeps its trial end', async () => {
    const { database } = api;
    const plan = await meteredPlan(database, { trialDays: 14 });
    const team = await newTeam(database);
    const start = new Date('2026-05-01T00:00:00Z');
    const started = await subscribe(service(database, start), {
      team: { id: team.id, name: team.name },
      plan,
      interval: 'month',
      currency: 'USD',
      actor,
    });
    expect(started.kind === 'subscribed' && started.subscription.status).toBe('trialing');
    const result = await changeSubscriptionPlan(service(database, new Date('2026-05-03T00:00:00Z')), {
      team: { id: team.id, name: team.name },
      interval: 'year',
      actor,
    });
    expect(result.kind).toBe('interval_switched');
    if (result.kind !== 'interval_switched') return;
    expect(result.proration).toBeNull();
    expect(subscriptionBody(result.subscription)).toMatchObject({
      status: 'trialing',
      interval: 'year',
      amount_minor: 10_000,
      current_period_start: '2026-05-01T00:00:00.000Z',
      current_period_end: '2026-05-15T00:00:00.000Z',
    });
    await runSubscriptionLifecycle({ database, logger: silentLogger(), now: () => new Date('2026-05-15T00:01:00Z') });
    expect((await getSubscription(database, team.id))?.currentPeriodEnd.toISOString()).toBe('2027-05-15T00:00:00.000Z');
  });

  it('refuses with stable codes and writes nothing: unchanged, no price in that interval, unpaid, no plan or interval', async () => {
    const team = await callApi(api, owner, 'POST', '/v1/teams', { name: `Team ${tag()}` });
    const slug = team.body.slug as string;
    const monthlyOnly = await meteredPlan(api.database, { annual: false });
    expect((await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription`, { plan: monthlyOnly })).status).toBe(
      201,
    );
    const snapshot = async () =>
      (
        await api.database.query(
          `SELECT (SELECT count(*)::int FROM audit_log WHERE team_id = $1) AS audit,
             (SELECT count(*)::int FROM subscription_prorations WHERE team_id = $1) AS prorations,
             (SELECT updated_at FROM subscriptions WHERE team_id = $1) AS updated`,
          [team.body.id],
        )
      ).rows[0];
    const before = await snapshot();
    const unchanged = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, { interval: 'month' });
    expect(unchanged.status).toBe(409);
    expect(unchanged.body.error.code).toBe('subscription_unchanged');
    const notOffered = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, { interval: 'year' });
    expect(notOffered.status).toBe(400);
    expect(notOffered.body.error.code).toBe('price_not_offered');
    const empty = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, {});
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('validation_failed');
    const badInterval = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, {
      interval: 'week',
    });
    expect(badInterval.body.error.code).toBe('validation_failed');
    expect(await snapshot()).toEqual(before);

    const annual = await meteredPlan(api.database);
    await api.database.query("UPDATE subscriptions SET status = 'unpaid' WHERE team_id = $1", [team.body.id]);
    const unpaidBefore = await snapshot();
    const unpaid = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, {
      plan: annual,
      interval: 'year',
    });
    expect(unpaid.status).toBe(402);
    expect(unpaid.body.error.code).toBe('payment_required');
    expect(await snapshot()).toEqual(unpaidBefore);
  });

  it('the endpoint switches plan and interval together, and a plan change alone still works as before', async () => {
    const team = await callApi(api, owner, 'POST', '/v1/teams', { name: `Team ${tag()}` });
    const slug = team.body.slug as string;
    const basic = await meteredPlan(api.database);
    const other = await meteredPlan(api.database);
    expect((await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription`, { plan: basic })).status).toBe(201);
    const both = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, {
      plan: other,
      interval: 'year',
    });
    expect(both.status).toBe(200);
    expect(both.body).toMatchObject({ change: 'interval_switched', subscription: { plan: other, interval: 'year' } });
    expect(both.body.proration.credit_minor).toBeGreaterThan(0);
    const back = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, {
      plan: basic,
      interval: 'month',
    });
    expect(back.body).toMatchObject({
      change: 'interval_switch_scheduled',
      subscription: { plan: other, interval: 'year', pending_change: { plan: basic, interval: 'month' } },
    });
    const shown = await callApi(api, owner, 'GET', `/v1/teams/${slug}/subscription`);
    expect(shown.body.pending_change).toMatchObject({ plan: basic, interval: 'month', amount_minor: 1000 });
    // A plan change in the same interval replaces the pending switch (and its interval).
    const same = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, { plan: basic });
    expect(same.body).toMatchObject({
      change: 'upgraded',
      subscription: { plan: basic, interval: 'year', pending_change: null },
    });
  });
});

describe(`switching between monthly and annual billing through Stripe (${expectedDatabaseDriver})`, () => {
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  let stripe: StripeServer;
  let api: TestApi;
  let owner: Account;
  const handlers = createStripeEventHandlers();
  const processEvents = async () => {
    await stripe.settled();
    return processStripeEvents({ database: api.database, handlers, logger: silentLogger() });
  };

  beforeAll(async () => {
    stripe = await startStripeServer({ webhookSecret });
    api = await startTestApi({
      stripeWebhookSecret: webhookSecret,
      stripe: { secretKey: stripe.apiKey, apiBase: stripe.url },
    });
    stripe.webhookUrl = `${api.server.url}/v1/stripe/webhook`;
    registerSubscriptionStripeHandlers(handlers, {
      provider: createStripeBillingProvider(
        { secretKey: stripe.apiKey, webhookSecret, apiBase: stripe.url },
        { maxNetworkRetries: 0 },
      ),
      graceDays: 7,
    });
    owner = await signUp(api, 'owner');
  });
  afterAll(async () => {
    await stripe?.close();
    await api?.dispose();
  });

  it('monthly → annual resets the Stripe billing cycle now with prorations; annual → monthly is a schedule applied at the year end', async () => {
    const plan = await meteredPlan(api.database);
    const team = await callApi(api, owner, 'POST', '/v1/teams', { name: `Team ${tag()}` });
    const slug = team.body.slug as string;
    const started = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription`, { plan });
    expect(started.status).toBe(202);
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    await stripe.completeCheckout(session?.id as string);
    await processEvents();
    const subscriptionId = (await getSubscription(api.database, team.body.id))?.providerSubscriptionId as string;
    await stripe.advanceClock(10 * 86_400);

    const annual = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, { interval: 'year' });
    expect(annual.status).toBe(200);
    expect(annual.body).toMatchObject({
      change: 'interval_switched',
      subscription: { interval: 'year', amount_minor: 10_000 },
    });
    const update = stripe.requests
      .filter((r) => r.method === 'POST' && r.path === `/v1/subscriptions/${subscriptionId}`)
      .at(-1);
    expect(update?.body).toMatchObject({
      proration_behavior: 'create_prorations',
      billing_cycle_anchor: { type: 'now' },
      items: [{ price_data: { unit_amount: '10000', recurring: { interval: 'year' } } }],
    });
    expect(stripe.idempotencyKeys.some((key) => key.startsWith('tollgate:subscription-change:'))).toBe(true);
    const item = (stripe.object(subscriptionId) as Json).items.data[0];
    expect(item.current_period_end - item.current_period_start).toBe(365 * 86_400);
    expect(annual.body.subscription.current_period_start).toBe(
      new Date(item.current_period_start * 1000).toISOString(),
    );
    // Stripe invoiced the year at once, the unused 20 or 21 days of the month credited on it.
    const invoice = stripe.object((stripe.object(subscriptionId) as Json).latest_invoice) as Json;
    expect(invoice.billing_reason).toBe('subscription_update');
    expect(invoice.total).toBeLessThan(10_000);
    expect(invoice.total).toBe(10_000 - annual.body.proration.credit_minor);
    const prorations = await api.database.query<{ collected_by: string; charge_minor: string }>(
      'SELECT collected_by, charge_minor::text FROM subscription_prorations WHERE team_id = $1',
      [team.body.id],
    );
    expect(prorations.rows).toEqual([{ collected_by: 'stripe', charge_minor: '10000' }]);
    await processEvents();
    expect((await callApi(api, owner, 'GET', `/v1/teams/${slug}/subscription`)).body).toMatchObject({
      interval: 'year',
      current_period_start: annual.body.subscription.current_period_start,
    });

    const monthly = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, { interval: 'month' });
    expect(monthly.body).toMatchObject({
      change: 'interval_switch_scheduled',
      subscription: { interval: 'year', pending_change: { interval: 'month', amount_minor: 1000 } },
    });
    const scheduleId = (stripe.object(subscriptionId) as Json).schedule as string;
    expect(scheduleId).toMatch(/^sub_sched_/);
    const schedule = stripe.object(scheduleId) as Json;
    expect(schedule.phases).toHaveLength(2);
    expect(schedule.phases[1].start_date).toBe(item.current_period_end);
    await processEvents();
    expect((await callApi(api, owner, 'GET', `/v1/teams/${slug}/subscription`)).body.interval).toBe('year');

    await stripe.advanceClock(366 * 86_400);
    await processEvents();
    const after = await callApi(api, owner, 'GET', `/v1/teams/${slug}/subscription`);
    expect(after.body).toMatchObject({ interval: 'month', amount_minor: 1000, pending_change: null, status: 'active' });
    expect(after.body.current_period_start).toBe(new Date(item.current_period_end * 1000).toISOString());
    const renewed = (stripe.object(subscriptionId) as Json).items.data[0];
    expect(renewed.price.recurring.interval).toBe('month');
    expect((stripe.object(subscriptionId) as Json).schedule).toBeNull();
  });

  it('a cancel at the period end releases a pending switch to monthly, at Stripe and here', async () => {
    const plan = await meteredPlan(api.database);
    const team = await callApi(api, owner, 'POST', '/v1/teams', { name: `Team ${tag()}` });
    const slug = team.body.slug as string;
    const started = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription`, { plan, interval: 'year' });
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    await stripe.completeCheckout(session?.id as string);
    await processEvents();
    const subscriptionId = (await getSubscription(api.database, team.body.id))?.providerSubscriptionId as string;
    await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/change`, { interval: 'month' });
    const scheduleId = (stripe.object(subscriptionId) as Json).schedule as string;
    expect(scheduleId).toMatch(/^sub_sched_/);
    const canceled = await callApi(api, owner, 'POST', `/v1/teams/${slug}/subscription/cancel`, {
      at_period_end: true,
    });
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ cancel_at_period_end: true, pending_change: null, interval: 'year' });
    expect((stripe.object(scheduleId) as Json).status).toBe('released');
    expect((stripe.object(subscriptionId) as Json).cancel_at_period_end).toBe(true);
  });
});
