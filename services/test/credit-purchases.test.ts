import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents } from '../src/billing/stripe-webhooks.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import { creditExpiryJob, deliverLowBalanceAlerts } from '../src/credits/credit-jobs.js';
import { consumeCredits, creditBalance } from '../src/credits/credit-ledger.js';
import { registerCreditPackStripeHandlers } from '../src/credits/credit-purchases.js';
import { callApi, type Json, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

type Account = SignedInAccount;

function harness() {
  const h = {
    api: undefined as unknown as TestApi,
    account: (label: string, installationRole: 'admin' | 'member' = 'member') =>
      signUp(h.api, label, { installationRole }),
    call: (who: Account, method: string, path: string, body?: unknown) => callApi(h.api, who, method, path, body),
    async team(owner: Account): Promise<{ id: string; slug: string }> {
      const created = await h.call(owner, 'POST', '/v1/teams', { name: `Team ${randomBytes(3).toString('hex')}` });
      expect(created.status).toBe(201);
      return { id: created.body.id, slug: created.body.slug };
    },
    async pack(operator: Account, input: { price: string; grant: string; validityDays?: number }): Promise<string> {
      const slug = `pack-${randomBytes(3).toString('hex')}`;
      const created = await h.call(operator, 'POST', '/v1/credit-packs', {
        slug,
        name: `Pack ${slug}`,
        prices: [{ currency: 'USD', amount: input.price }],
        grant: { currency: 'USD', amount: input.grant },
        ...(input.validityDays ? { validity_days: input.validityDays } : {}),
      });
      expect(created.status).toBe(201);
      return slug;
    },
    /** The team's USD credit, minor units. */
    async usd(teamId: string): Promise<bigint> {
      const balances = await creditBalance(h.api.database, teamId);
      return balances.find((balance) => 'currency' in balance.pool && balance.pool.currency === 'USD')?.balance ?? 0n;
    },
    async purchases(teamId: string) {
      return (await h.api.database.query('SELECT * FROM credit_purchases WHERE team_id = $1', [teamId])).rows;
    },
  };
  return h;
}

describe(`buying credit packs through Stripe (${expectedDatabaseDriver})`, () => {
  const h = harness();
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  let stripe: StripeServer;
  let operator: Account;
  let owner: Account;
  let pack: string;
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
    // As the worker registers them: checkout.session.completed belongs to subscriptions (a no-op in payment mode).
    registerSubscriptionStripeHandlers(handlers, {
      provider: createStripeBillingProvider(
        { secretKey: stripe.apiKey, webhookSecret, apiBase: stripe.url },
        { maxNetworkRetries: 0 },
      ),
      graceDays: 7,
    });
    registerCreditPackStripeHandlers(handlers);
    operator = await h.account('operator', 'admin');
    owner = await h.account('owner');
    pack = await h.pack(operator, { price: '45.00', grant: '50.00' });
  });
  afterAll(async () => {
    await stripe?.close();
    await h.api?.dispose();
  });

  async function buyAndPay(team: { id: string; slug: string }) {
    const bought = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    expect(bought.status).toBe(201);
    const session = stripe.objects('checkout.session').find((s) => s.url === bought.body.checkout_url) as Json;
    expect(session).toBeDefined();
    await stripe.completeCheckout(session.id);
    await processEvents();
    const paid = stripe.object(session.id) as Json;
    return { purchase: bought.body, sessionId: session.id as string, paymentIntent: paid.payment_intent as string };
  }

  it('opens a Checkout Session in payment mode for the price in the team currency and grants the pack once paid', async () => {
    const team = await h.team(owner);
    const bought = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    expect(bought.status).toBe(201);
    expect(bought.body).toMatchObject({
      pack,
      currency: 'USD',
      amount: '45.00',
      status: 'pending',
      provider: 'stripe',
    });
    expect(bought.body.checkout_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/checkout\/cs_test_/);
    const create = stripe.requests.filter((r) => r.path === '/v1/checkout/sessions' && r.method === 'POST').at(-1);
    expect(create?.body).toMatchObject({
      mode: 'payment',
      client_reference_id: team.id,
      line_items: [{ price_data: { currency: 'usd', unit_amount: '4500' }, quantity: '1' }],
      metadata: { tollgate_team_id: team.id, tollgate_pack: pack, tollgate_purchase_id: bought.body.id },
      payment_intent_data: { metadata: { tollgate_purchase_id: bought.body.id } },
    });
    expect(stripe.idempotencyKeys).toContain(`tollgate:credit-purchase:${bought.body.id}`);
    expect(await h.usd(team.id)).toBe(0n);

    const session = stripe.objects('checkout.session').find((s) => s.url === bought.body.checkout_url) as Json;
    await stripe.completeCheckout(session.id);
    const report = await processEvents();
    expect(report.failed + report.retrying).toBe(0);
    expect(await h.usd(team.id)).toBe(5000n);
    const [row] = await h.purchases(team.id);
    expect(row).toMatchObject({
      status: 'paid',
      provider_payment_id: (stripe.object(session.id) as Json).payment_intent,
    });
  });

  it('grants once when payment_intent.succeeded is delivered twice or sent again under a new id', async () => {
    const team = await h.team(owner);
    const { paymentIntent } = await buyAndPay(team);
    expect(await h.usd(team.id)).toBe(5000n);
    const succeeded = stripe.events.find(
      (e) => e.type === 'payment_intent.succeeded' && (e.data as Json).object.id === paymentIntent,
    );
    expect(succeeded).toBeDefined();
    await stripe.redeliver(succeeded?.id as string);
    await stripe.sendEvent('payment_intent.succeeded', stripe.object(paymentIntent) as Json);
    await processEvents();
    expect(await h.usd(team.id)).toBe(5000n);
    const grants = await h.api.database.query(
      "SELECT count(*)::int AS n FROM credit_entries WHERE team_id = $1 AND kind = 'grant'",
      [team.id],
    );
    expect(grants.rows[0]).toEqual({ n: 1 });
  });

  it('a refund takes back what is left of the pack, never below zero; a duplicate refund changes nothing', async () => {
    const team = await h.team(owner);
    const { paymentIntent } = await buyAndPay(team);
    await h.api.database.transaction((tx) =>
      consumeCredits(tx, { teamId: team.id, pool: { currency: 'USD' }, wanted: 1234n, idempotencyKey: 'used-some' }),
    );
    const charge = stripe.objects('charge').find((c) => (c as Json).payment_intent === paymentIntent) as Json;
    await stripe.refundCharge(charge.id);
    await processEvents();
    expect(await h.usd(team.id)).toBe(0n);
    const reversal = await h.api.database.query(
      "SELECT delta::text FROM credit_entries WHERE team_id = $1 AND kind = 'refund_reversal'",
      [team.id],
    );
    expect(reversal.rows).toEqual([{ delta: '-3766' }]);
    const refunded = stripe.events.find(
      (e) => e.type === 'charge.refunded' && (e.data as Json).object.id === charge.id,
    );
    await stripe.redeliver(refunded?.id as string);
    await processEvents();
    expect(await h.usd(team.id)).toBe(0n);
    expect((await h.purchases(team.id))[0]).toMatchObject({ status: 'refunded' });
  });

  it('refuses a pack without a price in the team currency, writing nothing and calling Stripe for nothing', async () => {
    const team = await h.team(owner);
    await h.api.database.query("UPDATE teams SET billing_currency = 'EUR' WHERE id = $1", [team.id]);
    const sessionsBefore = stripe.objects('checkout.session').length;
    const refused = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('price_not_offered');
    expect(refused.body.error.message).toContain('EUR');
    expect(await h.purchases(team.id)).toEqual([]);
    expect(stripe.objects('checkout.session')).toHaveLength(sessionsBefore);
    const audit = await h.api.database.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE team_id = $1 AND action LIKE 'credits.purchase%'",
      [team.id],
    );
    expect(audit.rows[0]).toEqual({ n: 0 });
  });
});

describe(`buying credit packs with the manual provider (${expectedDatabaseDriver})`, () => {
  const h = harness();
  let operator: Account;
  let owner: Account;

  beforeAll(async () => {
    h.api = await startTestApi();
    operator = await h.account('operator', 'admin');
    owner = await h.account('owner');
  });
  afterAll(async () => {
    await h.api?.dispose();
  });

  it('records the purchase pending; an operator confirms it once and the pack is granted', async () => {
    const team = await h.team(owner);
    const pack = await h.pack(operator, { price: '9.00', grant: '10.00' });
    const bought = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    expect(bought.status).toBe(201);
    expect(bought.body).toMatchObject({ status: 'pending', provider: 'manual', checkout_url: null, amount: '9.00' });
    expect(await h.usd(team.id)).toBe(0n);

    const byOwner = await h.call(owner, 'POST', `/v1/credits/purchases/${bought.body.id}/confirm`);
    expect(byOwner.status).toBe(403);
    expect(await h.usd(team.id)).toBe(0n);

    const confirmed = await h.call(operator, 'POST', `/v1/credits/purchases/${bought.body.id}/confirm`);
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ status: 'paid' });
    expect(await h.usd(team.id)).toBe(1000n);
    const again = await h.call(operator, 'POST', `/v1/credits/purchases/${bought.body.id}/confirm`);
    expect(again.status).toBe(200);
    expect(await h.usd(team.id)).toBe(1000n);
    expect((await h.call(operator, 'POST', `/v1/credits/purchases/${team.id}/confirm`)).status).toBe(404);
  });

  it('emails a low-balance crossing to the team owner once', async () => {
    const team = await h.team(owner);
    const pack = await h.pack(operator, { price: '9.00', grant: '10.00' });
    const bought = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    await h.call(operator, 'POST', `/v1/credits/purchases/${bought.body.id}/confirm`);
    const set = await h.call(owner, 'PUT', `/v1/teams/${team.slug}/credits/low-balance`, {
      currency: 'USD',
      below: '5.00',
    });
    expect(set.status).toBe(200);
    await h.api.database.transaction((tx) =>
      consumeCredits(tx, { teamId: team.id, pool: { currency: 'USD' }, wanted: 600n, idempotencyKey: 'dip' }),
    );
    const before = (await h.api.mail.parsed()).filter((m) => m.to.includes(owner.email)).length;
    expect(await deliverLowBalanceAlerts({ database: h.api.database, mailer: h.api.mail.mailer })).toBe(1);
    expect(await deliverLowBalanceAlerts({ database: h.api.database, mailer: h.api.mail.mailer })).toBe(0);
    const mails = (await h.api.mail.parsed()).filter((m) => m.to.includes(owner.email));
    expect(mails).toHaveLength(before + 1);
    expect(mails.at(-1)?.subject).toContain('$4.00');
    expect(mails.at(-1)?.text).toContain('below $5.00');
  });

  it('the expiry job writes off a pack past its validity', async () => {
    const team = await h.team(owner);
    const pack = await h.pack(operator, { price: '9.00', grant: '10.00', validityDays: 1 });
    const bought = await h.call(owner, 'POST', `/v1/teams/${team.slug}/credits/purchases`, { pack });
    await h.call(operator, 'POST', `/v1/credits/purchases/${bought.body.id}/confirm`);
    expect(await h.usd(team.id)).toBe(1000n);
    const job = creditExpiryJob({
      database: h.api.database,
      logger: silentLogger(),
      now: () => new Date(Date.now() + 2 * 86_400_000),
    });
    expect(job.intervalMs).toBe(3_600_000);
    await job.run(new AbortController().signal);
    const expiry = await h.api.database.query(
      "SELECT delta::text, balance_after::text FROM credit_entries WHERE team_id = $1 AND kind = 'expiry'",
      [team.id],
    );
    expect(expiry.rows).toEqual([{ delta: '-1000', balance_after: '0' }]);
  });
});
