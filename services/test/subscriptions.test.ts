import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents } from '../src/billing/stripe-webhooks.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import {
  markSubscriptionPastDue,
  recordSubscriptionPayment,
  runSubscriptionLifecycle,
} from '../src/billing/subscriptions.js';
import { archivePlan, createPlan } from '../src/plans/plan-catalog.js';
import { loadTeamPolicy } from '../src/plans/team-policy.js';
import { createMemoryTeamPolicyEvents, type TeamPolicyEvent } from '../src/plans/team-policy-events.js';
import type { Database } from '../src/storage/database.js';
import { callApi, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { type StripeObject, type StripeServer, startStripeServer } from './support/stripe-server.js';

const day = 86_400_000;

type Account = SignedInAccount;

/** One API (manual or Stripe) with its accounts and plans. */
function harness() {
  const h = {
    api: undefined as unknown as TestApi,
    plans: {} as Record<string, string>,
    account: (label: string, installationRole: 'admin' | 'member' = 'member') =>
      signUp(h.api, label, { installationRole }),
    call: (who: Account, method: string, path: string, body?: unknown) => callApi(h.api, who, method, path, body),
    async team(owner: Account): Promise<{ id: string; slug: string }> {
      const created = await h.call(owner, 'POST', '/v1/teams', { name: `Team ${randomBytes(3).toString('hex')}` });
      expect(created.status).toBe(201);
      return { id: created.body.id, slug: created.body.slug };
    },
    async plan(label: string, input: { monthly: string; trialDays?: number; eur?: string }): Promise<string> {
      const slug = `${label}-${randomBytes(3).toString('hex')}`;
      await h.api.database.transaction((tx) =>
        createPlan(tx, {
          slug,
          name: label,
          trial_days: input.trialDays ?? 0,
          prices: [
            { currency: 'USD', interval: 'month', amount: input.monthly },
            ...(input.eur ? [{ currency: 'EUR' as const, interval: 'month' as const, amount: input.eur }] : []),
          ],
        }),
      );
      return slug;
    },
    async state(teamId: string) {
      const rows = async (sql: string) => (await h.api.database.query(sql, [teamId])).rows;
      return {
        subscriptions: await rows('SELECT * FROM subscriptions WHERE team_id = $1 ORDER BY created_at'),
        checkouts: await rows('SELECT * FROM subscription_checkouts WHERE team_id = $1'),
        team: await rows('SELECT billing_currency, payment_required, billing_anchor_at FROM teams WHERE id = $1'),
        audit: await rows(
          "SELECT count(*)::int AS n FROM audit_log WHERE team_id = $1 AND action LIKE 'subscription.%'",
        ),
        events: await rows('SELECT count(*)::int AS n FROM webhook_events WHERE team_id = $1'),
      };
    },
  };
  return h;
}

const service = (database: Database, now?: () => Date) => ({
  database,
  provider: createManualBillingProvider(),
  graceDays: 7,
  logger: silentLogger(),
  ...(now ? { now } : {}),
});

describe(`subscriptions with the manual provider (${expectedDatabaseDriver})`, () => {
  const h = harness();
  const policyEvents = createMemoryTeamPolicyEvents();
  const heard: TeamPolicyEvent[] = [];
  let owner: Account;
  let free: string;
  let trial: string;
  let basic: string;
  let pro: string;

  beforeAll(async () => {
    policyEvents.subscribe((event) => heard.push(event));
    h.api = await startTestApi({ teamPolicyEvents: policyEvents });
    owner = await h.account('owner');
    free = await h.plan('free', { monthly: '0' });
    trial = await h.plan('trial', { monthly: '20.00', trialDays: 14 });
    basic = await h.plan('basic', { monthly: '10.00', eur: '9.00' });
    pro = await h.plan('pro', { monthly: '30.00' });
  });
  afterAll(() => h.api?.dispose());

  it('starts a free plan at once, fixes the currency and the billing anchor, audits, tells webhooks and gateways', async () => {
    const team = await h.team(owner);
    heard.length = 0;
    const created = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: free });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      plan: free,
      status: 'active',
      currency: 'USD',
      amount_minor: 0,
      provider: 'manual',
    });
    const state = await h.state(team.id);
    expect(state.team[0]).toMatchObject({ billing_currency: 'USD', payment_required: false });
    expect((state.team[0]?.billing_anchor_at as Date | undefined)?.toISOString()).toBe(
      created.body.current_period_start,
    );
    expect(state.audit[0]?.n).toBe(1);
    expect(state.events[0]?.n).toBe(1);
    expect(heard).toContainEqual({ type: 'invalidate', teamId: team.id });
    expect((await loadTeamPolicy(h.api.database, team.id))?.planSlug).toBe(free);
  });

  it('starts a trial without a card, and the trial becomes active at its end', async () => {
    const team = await h.team(owner);
    const created = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: trial });
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('trialing');
    const trialEnd = new Date(created.body.trial_ends_at).getTime();
    expect(trialEnd - new Date(created.body.current_period_start).getTime()).toBe(14 * day);
    const report = await runSubscriptionLifecycle(service(h.api.database, () => new Date(trialEnd + 1000)));
    expect(report.renewed).toBeGreaterThanOrEqual(1);
    const shown = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(shown.body).toMatchObject({ status: 'active', current_period_start: new Date(trialEnd).toISOString() });
  });

  it('upgrades at once with proration, and downgrades at the period end', async () => {
    const team = await h.team(owner);
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic });
    const up = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: pro });
    expect(up.status).toBe(200);
    expect(up.body.change).toBe('upgraded');
    expect(up.body.subscription.plan).toBe(pro);
    // Seconds into a month: almost all of the old fee is credited and of the new one charged.
    expect(up.body.proration.credit_minor).toBeGreaterThanOrEqual(999);
    expect(up.body.proration.charge_minor).toBeGreaterThanOrEqual(2999);
    expect(up.body.proration.net_minor).toBe(up.body.proration.charge_minor - up.body.proration.credit_minor);
    const stored = await h.api.database.query<{ net_minor: string; collected_by: string }>(
      'SELECT net_minor, collected_by FROM subscription_prorations WHERE team_id = $1',
      [team.id],
    );
    expect(stored.rows).toEqual([{ net_minor: String(up.body.proration.net_minor), collected_by: 'tollgate' }]);

    const down = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: basic });
    expect(down.body.change).toBe('downgrade_scheduled');
    expect(down.body.subscription.plan).toBe(pro);
    expect(down.body.subscription.pending_change).toMatchObject({
      plan: basic,
      at: down.body.subscription.current_period_end,
    });
    const end = new Date(down.body.subscription.current_period_end).getTime();
    await runSubscriptionLifecycle(service(h.api.database, () => new Date(end - 1000)));
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.plan).toBe(pro);
    await runSubscriptionLifecycle(service(h.api.database, () => new Date(end + 1000)));
    const after = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(after.body).toMatchObject({ plan: basic, amount_minor: 1000, pending_change: null, status: 'active' });
    expect((await loadTeamPolicy(h.api.database, team.id))?.planSlug).toBe(basic);
  });

  it('cancels at the period end, resumes, cancels now', async () => {
    const team = await h.team(owner);
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic });
    const scheduled = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/cancel`, {
      at_period_end: true,
    });
    expect(scheduled.body).toMatchObject({ status: 'active', cancel_at_period_end: true });
    const resumed = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/resume`);
    expect(resumed.body).toMatchObject({ status: 'active', cancel_at_period_end: false });
    const again = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/resume`);
    expect(again.body.error.code).toBe('subscription_not_canceling');
    const canceled = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/cancel`, {});
    expect(canceled.body.status).toBe('canceled');
    expect((await loadTeamPolicy(h.api.database, team.id))?.planSlug).not.toBe(basic);
    expect((await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/cancel`, {})).body.error.code).toBe(
      'no_subscription',
    );
  });

  it('ends a subscription set to cancel at its period end', async () => {
    const team = await h.team(owner);
    const created = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic });
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/cancel`, { at_period_end: true });
    const end = new Date(created.body.current_period_end).getTime();
    await runSubscriptionLifecycle(service(h.api.database, () => new Date(end + 1000)));
    const shown = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(shown.body).toMatchObject({ status: 'canceled', canceled_at: created.body.current_period_end });
  });

  it('past due beyond the grace sets payment_required; a payment clears it', async () => {
    const team = await h.team(owner);
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic });
    const failedAt = new Date();
    const pastDue = await markSubscriptionPastDue(service(h.api.database), { teamId: team.id, at: failedAt });
    expect(pastDue.graceEndsAt?.getTime()).toBe(failedAt.getTime() + 7 * day);
    await runSubscriptionLifecycle(service(h.api.database, () => new Date(failedAt.getTime() + 6 * day)));
    expect((await loadTeamPolicy(h.api.database, team.id))?.paymentRequired).toBe(false);
    heard.length = 0;
    await runSubscriptionLifecycle({
      ...service(h.api.database, () => new Date(failedAt.getTime() + 7 * day + 1)),
      teamPolicyEvents: policyEvents,
    });
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.status).toBe('unpaid');
    expect((await loadTeamPolicy(h.api.database, team.id))?.paymentRequired).toBe(true);
    expect(heard).toContainEqual({ type: 'invalidate', teamId: team.id });
    expect((await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: pro })).status).toBe(402);
    await recordSubscriptionPayment(
      { ...service(h.api.database), teamPolicyEvents: policyEvents },
      { teamId: team.id },
    );
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      status: 'active',
      past_due_at: null,
    });
    expect((await loadTeamPolicy(h.api.database, team.id))?.paymentRequired).toBe(false);
  });

  it('fixes the currency at the first subscription', async () => {
    const team = await h.team(owner);
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic, currency: 'EUR' });
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/cancel`, {});
    const before = await h.state(team.id);
    const refused = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, {
      plan: basic,
      currency: 'USD',
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('currency_fixed');
    expect(await h.state(team.id)).toEqual(before);
    const euro = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic, currency: 'EUR' });
    expect(euro.body).toMatchObject({ currency: 'EUR', amount_minor: 900 });
  });

  it('refuses bad input with a code and writes nothing', async () => {
    const team = await h.team(owner);
    const archived = await h.plan('old', { monthly: '5.00' });
    await h.api.database.transaction((tx) => archivePlan(tx, archived));
    const before = await h.state(team.id);
    const cases: [unknown, number, string][] = [
      [{ plan: 'no-such-plan' }, 404, 'not_found'],
      [{ plan: archived }, 409, 'plan_archived'],
      [{ plan: pro, currency: 'GBP' }, 400, 'price_not_offered'],
      [{ plan: pro, interval: 'year' }, 400, 'price_not_offered'],
      [{ plan: pro, currency: 'XYZ' }, 400, 'validation_failed'],
      [{}, 400, 'validation_failed'],
    ];
    for (const [body, status, code] of cases) {
      const refused = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, body);
      expect([refused.status, refused.body.error.code], JSON.stringify(body)).toEqual([status, code]);
    }
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic });
    const twice = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: pro });
    expect(twice.body.error.code).toBe('subscription_exists');
    const same = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: basic });
    expect(same.body.error.code).toBe('subscription_unchanged');
    expect((await h.state(team.id)).subscriptions).toHaveLength(1);
    expect(before.subscriptions).toHaveLength(0);
  });

  it('keeps other teams and members without billing permissions out', async () => {
    const team = await h.team(owner);
    const stranger = await h.account('stranger');
    const refused = await h.call(stranger, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: basic });
    expect([refused.status, refused.body.error.code]).toEqual([404, 'not_found']);
    const member = await h.account('member');
    await h.api.database.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'developer')`, [
      team.id,
      member.id,
    ]);
    for (const [method, path] of [
      ['POST', ''],
      ['GET', ''],
      ['POST', '/cancel'],
    ] as const) {
      const denied = await h.call(
        member,
        method,
        `/v1/teams/${team.slug}/subscription${path}`,
        method === 'POST' ? { plan: basic } : undefined,
      );
      expect([denied.status, denied.body.error.code]).toEqual([403, 'forbidden']);
    }
    expect((await h.state(team.id)).subscriptions).toHaveLength(0);
  });
});

describe(`subscriptions through Stripe (${expectedDatabaseDriver})`, () => {
  const h = harness();
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  let stripe: StripeServer;
  let owner: Account;
  let paid: string;
  let premium: string;
  let trial: string;
  const handlers = createStripeEventHandlers();

  const processEvents = async () => {
    await stripe.settled();
    return processStripeEvents({ database: h.api.database, handlers, logger: silentLogger() });
  };

  beforeAll(async () => {
    stripe = await startStripeServer({ webhookSecret });
    h.api = await startTestApi({
      stripeWebhookSecret: webhookSecret,
      stripe: { secretKey: stripe.apiKey, apiBase: stripe.url },
    });
    stripe.webhookUrl = `${h.api.server.url}/v1/stripe/webhook`;
    registerSubscriptionStripeHandlers(handlers, {
      provider: createStripeBillingProvider(
        { secretKey: stripe.apiKey, webhookSecret, apiBase: stripe.url },
        { maxNetworkRetries: 0 },
      ),
      graceDays: 7,
    });
    owner = await h.account('owner');
    paid = await h.plan('paid', { monthly: '10.00' });
    premium = await h.plan('premium', { monthly: '25.00' });
    trial = await h.plan('trial', { monthly: '20.00', trialDays: 14 });
  });
  afterAll(async () => {
    await stripe?.close();
    await h.api?.dispose();
  });

  async function checkout(team: { id: string; slug: string }, plan: string) {
    const started = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan });
    expect(started.status).toBe(202);
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    expect(session).toBeDefined();
    await stripe.completeCheckout(session?.id as string);
    await processEvents();
    return session as { id: string; subscription?: string };
  }

  it('a paid plan answers a Checkout URL and becomes active when the checkout completes', async () => {
    const team = await h.team(owner);
    const started = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid });
    expect(started.status).toBe(202);
    expect(started.body.checkout_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/checkout\/cs_test_/);
    expect((await h.state(team.id)).subscriptions).toHaveLength(0);
    const create = stripe.requests.find((r) => r.path === '/v1/checkout/sessions' && r.method === 'POST');
    expect(create?.body).toMatchObject({
      mode: 'subscription',
      client_reference_id: team.id,
      line_items: [{ price_data: { currency: 'usd', unit_amount: '1000', recurring: { interval: 'month' } } }],
      subscription_data: { metadata: { tollgate_team_id: team.id } },
    });
    expect(stripe.idempotencyKeys).toContain(`tollgate:customer:${team.id}`);
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    await stripe.completeCheckout(session?.id as string);
    await processEvents();
    const shown = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(shown.body).toMatchObject({ plan: paid, status: 'active', provider: 'stripe', amount_minor: 1000 });
    // A duplicate delivery of the completion changes nothing.
    const completed = stripe.events.find(
      (e) => e.type === 'checkout.session.completed' && e.data.object.id === session?.id,
    );
    await stripe.redeliver(completed?.id as string);
    await stripe.sendEvent('checkout.session.completed', completed?.data.object as never);
    await processEvents();
    expect((await h.state(team.id)).subscriptions).toHaveLength(1);
  });

  it('trial → paid: a trial starts without a card and is active after Stripe charges at its end', async () => {
    const team = await h.team(owner);
    const started = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: trial });
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ status: 'trialing', provider: 'stripe' });
    await processEvents();
    await stripe.advanceClock(15 * 86_400);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      status: 'active',
      plan: trial,
    });
  });

  it('failed payment → past_due → unpaid after the grace → paid → active; old events do not undo it', async () => {
    const team = await h.team(owner);
    await checkout(team, paid);
    const subscriptionId = (await h.state(team.id)).subscriptions[0]?.provider_subscription_id as string;
    // An invoice of the subscription that the card declines (the local Stripe pays its renewals).
    const form = async (path: string, body: Record<string, string>) => {
      const response = await fetch(`${stripe.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stripe.apiKey}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });
      return response.json() as Promise<{ id: string; error?: unknown }>;
    };
    const customer = String(stripe.object(subscriptionId)?.customer);
    await form('/v1/invoiceitems', { customer, amount: '1000', currency: 'usd', subscription: subscriptionId });
    const draft = await form('/v1/invoices', {
      customer,
      subscription: subscriptionId,
      pending_invoice_items_behavior: 'include',
    });
    expect(draft.error).toBeUndefined();
    await stripe.failInvoicePayment(draft.id);
    await processEvents();
    const pastDue = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(pastDue.body.status).toBe('past_due');
    const graceEnd = new Date(pastDue.body.grace_ends_at).getTime();
    await runSubscriptionLifecycle({
      database: h.api.database,
      logger: silentLogger(),
      now: () => new Date(graceEnd + 1),
    });
    expect((await loadTeamPolicy(h.api.database, team.id))?.paymentRequired).toBe(true);
    // Stripe still says past_due: a late event keeps our unpaid.
    await stripe.sendEvent('invoice.payment_failed', stripe.object(draft.id) as never);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.status).toBe('unpaid');
    const failedEvent = stripe.events.filter((e) => e.type === 'customer.subscription.updated').at(-1);
    await stripe.payInvoice(draft.id);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      status: 'active',
      grace_ends_at: null,
    });
    expect((await loadTeamPolicy(h.api.database, team.id))?.paymentRequired).toBe(false);
    // The past_due update delivered again, and a stale copy: the re-fetched state stays active.
    await stripe.redeliver(failedEvent?.id as string);
    await stripe.sendEvent(
      'customer.subscription.updated',
      { ...(failedEvent?.data.object as StripeObject), status: 'past_due' },
      {
        created: (failedEvent?.created ?? 0) - 60,
      },
    );
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.status).toBe('active');
  });

  it('upgrades through Stripe with proration and schedules a downgrade without it', async () => {
    const team = await h.team(owner);
    await checkout(team, paid);
    const up = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: premium });
    expect(up.body).toMatchObject({ change: 'upgraded', subscription: { plan: premium, amount_minor: 2500 } });
    const update = stripe.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/subscriptions/')).at(-1);
    expect(update?.body).toMatchObject({ proration_behavior: 'create_prorations' });
    const prorations = await h.api.database.query(
      'SELECT collected_by FROM subscription_prorations WHERE team_id = $1',
      [team.id],
    );
    expect(prorations.rows).toEqual([{ collected_by: 'stripe' }]);
    const down = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: paid });
    expect(down.body).toMatchObject({ change: 'downgrade_scheduled', subscription: { plan: premium } });
    const later = stripe.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/subscriptions/')).at(-1);
    expect(later?.body).toMatchObject({ proration_behavior: 'none' });
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.plan).toBe(premium);
    await stripe.advanceClock(32 * 86_400);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      plan: paid,
      pending_change: null,
    });
  });

  it('cancels at the period end and resumes through Stripe; a Dashboard cancel ends it', async () => {
    const team = await h.team(owner);
    await checkout(team, paid);
    const subscriptionId = (await h.state(team.id)).subscriptions[0]?.provider_subscription_id as string;
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/cancel`, { at_period_end: true });
    expect(stripe.object(subscriptionId)?.cancel_at_period_end).toBe(true);
    await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/resume`);
    expect(stripe.object(subscriptionId)?.cancel_at_period_end).toBe(false);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.cancel_at_period_end).toBe(false);
    await stripe.deleteSubscription(subscriptionId);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.status).toBe('canceled');
  });
});
