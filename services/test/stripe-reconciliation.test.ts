import { randomBytes, randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents } from '../src/billing/stripe-webhooks.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import { callApi, type Json, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

describe(`reconciliation with Stripe (${expectedDatabaseDriver})`, () => {
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const handlers = createStripeEventHandlers();
  let stripe: StripeServer;
  let api: TestApi;
  let operator: SignedInAccount;
  let member: SignedInAccount;
  let plan: string;
  const teams: { id: string; slug: string }[] = [];

  async function subscribedTeam(): Promise<{ id: string; slug: string }> {
    const created = await callApi(api, member, 'POST', '/v1/teams', { name: `Team ${randomBytes(3).toString('hex')}` });
    const team = { id: created.body.id as string, slug: created.body.slug as string };
    const started = await callApi(api, member, 'POST', `/v1/teams/${team.slug}/subscription`, { plan });
    expect(started.status).toBe(202);
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    await stripe.completeCheckout(session?.id as string);
    await stripe.settled();
    await processStripeEvents({ database: api.database, handlers, logger: silentLogger() });
    return team;
  }

  const ourStripeId = async (teamId: string) =>
    (
      await api.database.query<{ provider_subscription_id: string }>(
        "SELECT provider_subscription_id FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'",
        [teamId],
      )
    ).rows[0]?.provider_subscription_id as string;

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
    operator = await signUp(api, 'reconcile', { installationRole: 'admin' });
    member = await signUp(api, 'reconcile', { installationRole: 'member' });
    plan = `paid-${randomBytes(3).toString('hex')}`;
    await api.database.transaction((tx) =>
      createPlan(tx, {
        slug: plan,
        name: 'Paid',
        trial_days: 0,
        prices: [{ currency: 'USD', interval: 'month', amount: '10.00' }],
      }),
    );
    teams.push(await subscribedTeam(), await subscribedTeam());
  });
  afterAll(async () => {
    await stripe?.close();
    await api?.dispose();
  });

  it('reports no difference when both sides agree', async () => {
    const report = await callApi(api, operator, 'GET', '/v1/billing/reconcile');
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ configured: true, compared: { ours: 2, stripe: 2 }, differences: [] });
  });

  it('finds a status changed only in Stripe, a subscription missing in Stripe and one missing at home', async () => {
    const [first, second] = teams as [{ id: string }, { id: string }, ...unknown[]];
    // Canceled from the Dashboard; the event is delivered but not processed yet.
    const canceled = await ourStripeId(first.id);
    await stripe.deleteSubscription(canceled);
    // Created in Stripe by hand, for a customer we never had.
    const sdk = new Stripe(stripe.apiKey, stripe.stripeConfig());
    const price = (await sdk.subscriptions.retrieve(await ourStripeId(second.id))).items.data[0]?.price.id as string;
    const customer = await sdk.customers.create({ email: 'stranger@example.com' });
    const stranger = await sdk.subscriptions.create({
      customer: customer.id,
      items: [{ price }],
      collection_method: 'send_invoice',
      days_until_due: 30,
    });
    // Ours, under an id Stripe never gave.
    const created = await callApi(api, member, 'POST', '/v1/teams', { name: `Team ${randomBytes(3).toString('hex')}` });
    const ghost = await api.database.query<{ id: string }>(
      `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start,
         current_period_end, provider, provider_subscription_id, amount_minor)
       SELECT $1, id, 'active', 'USD', 'month', now(), now() + interval '1 month', 'stripe', 'sub_never_in_stripe', 1000
       FROM plans WHERE slug = $2 RETURNING id`,
      [created.body.id, plan],
    );

    const report = await callApi(api, operator, 'GET', '/v1/billing/reconcile');
    expect(report.status).toBe(200);
    expect(report.body.message).toBe('3 differences with Stripe');
    expect(report.body.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'status_mismatch',
          team_id: first.id,
          stripe_subscription_id: canceled,
          ours: 'active',
          stripe: 'canceled',
        }),
        expect.objectContaining({
          kind: 'missing_in_stripe',
          subscription_id: ghost.rows[0]?.id,
          stripe_subscription_id: 'sub_never_in_stripe',
        }),
        expect.objectContaining({
          kind: 'missing_at_home',
          subscription_id: null,
          stripe_subscription_id: stranger.id,
        }),
      ]),
    );
    expect(report.body.differences.filter((d: Json) => d.object === 'subscription')).toHaveLength(3);
  });

  it('compares the invoices we pushed: status and total once finalized, and finds one missing on either side', async () => {
    const team = teams[1] as { id: string };
    const subscription = (
      await api.database.query<{ id: string }>(
        "SELECT id FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'",
        [team.id],
      )
    ).rows[0]?.id as string;
    const customer = (
      await api.database.query<{ customer_id: string }>(
        'SELECT customer_id FROM billing_customers WHERE team_id = $1',
        [team.id],
      )
    ).rows[0]?.customer_id as string;
    const sdk = new Stripe(stripe.apiKey, stripe.stripeConfig());
    const pushed = async (ourId: string, amount: number) => {
      const invoice = await sdk.invoices.create({
        customer,
        currency: 'usd',
        collection_method: 'charge_automatically',
        auto_advance: false,
        pending_invoice_items_behavior: 'exclude',
        metadata: { tollgate_invoice_id: ourId },
      });
      await sdk.invoiceItems.create({ customer, invoice: invoice.id as string, currency: 'usd', amount });
      return invoice.id as string;
    };
    const ours = async (stripeId: string, total: number, month: number, id = randomUUID()) => {
      await api.database.query(
        `INSERT INTO invoices (id, team_id, subscription_id, period_start, period_end, currency, status, subtotal_minor,
           total_minor, provider, provider_invoice_id, push_state, finalized_at)
         VALUES ($1, $2, $3, $4, $5, 'USD', 'open', $6, $6, 'stripe', $7, 'finalized', now())`,
        [
          id,
          team.id,
          subscription,
          new Date(Date.UTC(2026, month, 1)),
          new Date(Date.UTC(2026, month + 1, 1)),
          total,
          stripeId,
        ],
      );
      return id;
    };
    const invoiceDifferences = async () =>
      ((await callApi(api, operator, 'GET', '/v1/billing/reconcile')).body.differences as Json[]).filter(
        (difference) => difference.object === 'invoice',
      );

    const agreed = randomUUID();
    const agreedInStripe = await pushed(agreed, 2500);
    await sdk.invoices.finalizeInvoice(agreedInStripe);
    await ours(agreedInStripe, 2500, 0, agreed);
    expect(await invoiceDifferences()).toEqual([]);

    await stripe.payInvoice(agreedInStripe);
    const strangerInStripe = await pushed(randomUUID(), 700);
    const ghost = await ours('in_never_in_stripe', 1200, 1);
    const differences = await invoiceDifferences();
    expect(differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'status_mismatch', invoice_id: agreed, ours: 'open', stripe: 'paid' }),
        expect.objectContaining({
          kind: 'missing_in_stripe',
          invoice_id: ghost,
          stripe_invoice_id: 'in_never_in_stripe',
        }),
        expect.objectContaining({ kind: 'missing_at_home', stripe_invoice_id: strangerInStripe, stripe: 'draft' }),
      ]),
    );
    expect(differences).toHaveLength(3);
  });

  it('is for operators only', async () => {
    const refused = await callApi(api, member, 'GET', '/v1/billing/reconcile');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
  });

  it('without Stripe settings, answers that there is nothing to reconcile against', async () => {
    const manual = await startTestApi();
    try {
      const report = await callApi(
        manual,
        await signUp(manual, 'reconcile', { installationRole: 'admin' }),
        'GET',
        '/v1/billing/reconcile',
      );
      expect(report.status).toBe(200);
      expect(report.body).toMatchObject({ configured: false, differences: [] });
      expect(report.body.message).toMatch(/nothing to reconcile against/);
    } finally {
      await manual.dispose();
    }
  });
});
