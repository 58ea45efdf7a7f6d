import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents } from '../src/billing/stripe-webhooks.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import { registerCreditPackStripeHandlers } from '../src/credits/credit-purchases.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import { callApi, type Json, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

const tag = () => randomBytes(3).toString('hex');

type Account = SignedInAccount;

function harness() {
  const h = {
    api: undefined as unknown as TestApi,
    account: (installationRole: 'admin' | 'member' = 'member') => signUp(h.api, 'u', { installationRole }),
    call: (who: Account, method: string, path: string, body?: unknown) => callApi(h.api, who, method, path, body),
    async team(owner: Account): Promise<{ id: string; slug: string }> {
      const created = await h.call(owner, 'POST', '/v1/teams', { name: `Team ${tag()}` });
      expect(created.status).toBe(201);
      return { id: created.body.id, slug: created.body.slug };
    },
    async plan(monthly: string): Promise<string> {
      const slug = `plan-${tag()}`;
      await h.api.database.transaction((tx) =>
        createPlan(tx, {
          slug,
          name: slug,
          trial_days: 0,
          prices: [
            { currency: 'USD', interval: 'month', amount: monthly },
            { currency: 'USD', interval: 'year', amount: `${Number(monthly) * 10}.00` },
          ],
        }),
      );
      return slug;
    },
    async rows(sql: string, teamId: string) {
      return (await h.api.database.query(sql, [teamId])).rows as Json[];
    },
  };
  return h;
}

describe(`abandoned Checkouts through Stripe: checkout.session.expired (${expectedDatabaseDriver})`, () => {
  const h = harness();
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  let stripe: StripeServer;
  let sdk: Stripe;
  let owner: Account;
  let operator: Account;
  let paid: string;
  let other: string;
  const handlers = createStripeEventHandlers();
  const processEvents = async () => {
    await stripe.settled();
    return processStripeEvents({ database: h.api.database, handlers, logger: silentLogger() });
  };
  const sessionOf = (url: string) => stripe.objects('checkout.session').find((s) => s.url === url) as Json;

  beforeAll(async () => {
    stripe = await startStripeServer({ webhookSecret });
    sdk = new Stripe(stripe.apiKey, {
      host: '127.0.0.1',
      port: stripe.port,
      protocol: 'http',
      maxNetworkRetries: 0,
      telemetry: false,
    });
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
    registerCreditPackStripeHandlers(handlers);
    owner = await h.account();
    operator = await h.account('admin');
    paid = await h.plan('10.00');
    other = await h.plan('20.00');
  });
  afterAll(async () => {
    await stripe?.close();
    await h.api?.dispose();
  });

  it('marks the subscription checkout expired once, audited; show no longer offers it', async () => {
    const team = await h.team(owner);
    const started = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid });
    expect(started.status).toBe(202);
    const open = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(open.status).toBe(404);
    expect(open.body.error.message).toContain(started.body.checkout_url);
    const [row] = await h.rows('SELECT expires_at FROM subscription_checkouts WHERE team_id = $1', team.id);
    expect(row.expires_at.getTime()).toBe(sessionOf(started.body.checkout_url).expires_at * 1000);

    await sdk.checkout.sessions.expire(sessionOf(started.body.checkout_url).id);
    await processEvents();
    const expired = stripe.events.find(
      (e) => e.type === 'checkout.session.expired' && e.data.object.url === started.body.checkout_url,
    );
    expect(expired).toBeDefined();
    // A duplicate delivery changes nothing more.
    await stripe.sendEvent('checkout.session.expired', expired?.data.object as never);
    await processEvents();
    expect(
      await h.rows(
        'SELECT status, expired_at IS NOT NULL AS stamped FROM subscription_checkouts WHERE team_id = $1',
        team.id,
      ),
    ).toEqual([{ status: 'expired', stamped: true }]);
    expect(
      await h.rows(
        "SELECT details->>'reason' AS reason FROM audit_log WHERE team_id = $1 AND action = 'subscription.checkout_expired'",
        team.id,
      ),
    ).toEqual([{ reason: 'expired' }]);
    const after = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(after.body.error.message).toBe('the team has no subscription');
    expect(await h.rows('SELECT 1 FROM subscriptions WHERE team_id = $1', team.id)).toHaveLength(0);
    // Subscribing again starts a new Checkout instead of offering the expired one.
    const again = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid });
    expect(again.status).toBe(202);
    expect(again.body.checkout_url).not.toBe(started.body.checkout_url);
  });

  it('a completed checkout stays completed when an expiry event arrives out of order', async () => {
    const team = await h.team(owner);
    const started = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid });
    const session = sessionOf(started.body.checkout_url);
    await stripe.completeCheckout(session.id);
    await processEvents();
    await stripe.sendEvent('checkout.session.expired', { ...session, status: 'expired' } as never, {
      created: Math.floor(Date.now() / 1000) - 60,
    });
    await processEvents();
    expect(await h.rows('SELECT status FROM subscription_checkouts WHERE team_id = $1', team.id)).toEqual([
      { status: 'completed' },
    ]);
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      plan: paid,
      status: 'active',
      open_checkout: null,
    });
  });

  it('subscribing again reuses the open Checkout of the same plan and interval; another one replaces it', async () => {
    const team = await h.team(owner);
    const first = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid });
    const sessionsBefore = stripe.objects('checkout.session').length;
    const same = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid });
    expect(same.status).toBe(202);
    expect(same.body).toEqual(first.body);
    expect(stripe.objects('checkout.session')).toHaveLength(sessionsBefore);

    const annual = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: paid, interval: 'year' });
    expect(annual.status).toBe(202);
    expect(annual.body.checkout_url).not.toBe(first.body.checkout_url);
    // The first can no longer be paid: expired at Stripe and here.
    expect(sessionOf(first.body.checkout_url).status).toBe('expired');
    await processEvents();
    expect(
      await h.rows(
        'SELECT billing_interval, status FROM subscription_checkouts WHERE team_id = $1 ORDER BY created_at',
        team.id,
      ),
    ).toEqual([
      { billing_interval: 'month', status: 'expired' },
      { billing_interval: 'year', status: 'open' },
    ]);
    expect(
      await h.rows(
        "SELECT details->>'reason' AS reason FROM audit_log WHERE team_id = $1 AND action = 'subscription.checkout_expired'",
        team.id,
      ),
    ).toEqual([{ reason: 'replaced' }]);
  });

  it('subscription show names the open Checkout of a team on a free plan moving to a paid one', async () => {
    const team = await h.team(owner);
    const free = `free-${tag()}`;
    await h.api.database.transaction((tx) =>
      createPlan(tx, {
        slug: free,
        name: 'Free',
        trial_days: 0,
        prices: [{ currency: 'USD', interval: 'month', amount: '0' }],
      }),
    );
    expect((await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: free })).status).toBe(201);
    const change = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription/change`, { plan: other });
    expect(change.status).toBe(202);
    const shown = await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`);
    expect(shown.body).toMatchObject({
      plan: free,
      open_checkout: { checkout_url: change.body.checkout_url, plan: other, interval: 'month', currency: 'USD' },
    });
    await sdk.checkout.sessions.expire(sessionOf(change.body.checkout_url).id);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.open_checkout).toBeNull();
  });

  it('an abandoned credit pack Checkout leaves its purchase expired, audited, nothing granted', async () => {
    const team = await h.team(owner);
    const pack = `pack-${tag()}`;
    const created = await h.call(operator, 'POST', '/v1/credit-packs', {
      slug: pack,
      name: `Pack ${pack}`,
      prices: [{ currency: 'USD', amount: '45.00' }],
      grant: { currency: 'USD', amount: '50.00' },
    });
    expect(created.status).toBe(201);
    const bought = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    expect(bought.status).toBe(201);
    const session = stripe.objects('checkout.session').find((s) => s.url === bought.body.checkout_url) as Json;
    await sdk.checkout.sessions.expire(session.id);
    await processEvents();
    const expired = stripe.events.find((e) => e.type === 'checkout.session.expired' && e.data.object.id === session.id);
    await stripe.sendEvent('checkout.session.expired', expired?.data.object as never);
    await processEvents();
    expect(
      await h.rows(
        'SELECT status, expired_at IS NOT NULL AS stamped FROM credit_purchases WHERE team_id = $1',
        team.id,
      ),
    ).toEqual([{ status: 'expired', stamped: true }]);
    expect(
      await h.rows(
        "SELECT count(*)::int AS n FROM audit_log WHERE team_id = $1 AND action = 'credits.purchase_expired'",
        team.id,
      ),
    ).toEqual([{ n: 1 }]);
    expect(await h.rows('SELECT count(*)::int AS n FROM credit_entries WHERE team_id = $1', team.id)).toEqual([
      { n: 0 },
    ]);
  });
});

describe(`Checkouts with the manual provider (${expectedDatabaseDriver})`, () => {
  const h = harness();
  let owner: Account;

  beforeAll(async () => {
    h.api = await startTestApi();
    owner = await h.account();
  });
  afterAll(() => h.api?.dispose());

  it('a paid plan starts at once: no Checkout to expire, and show offers none', async () => {
    const team = await h.team(owner);
    const plan = await h.plan('10.00');
    expect((await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan })).status).toBe(201);
    expect(await h.rows('SELECT 1 FROM subscription_checkouts WHERE team_id = $1', team.id)).toHaveLength(0);
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body.open_checkout).toBeNull();
  });
});
