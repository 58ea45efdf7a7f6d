import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createApi,
  createApiKey,
  createLogger,
  createStripeBillingProvider,
  createStripeEventHandlers,
  createUserWithPassword,
  listApiDefinitions,
  listen,
  loadTeamPolicy,
  openTeamPolicyEvents,
  processStripeEvents,
  type RunningServer,
  registerSubscriptionStripeHandlers,
  runSubscriptionLifecycle,
  type TeamPolicyEvents,
} from '@tollgate/services';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  type StripeServer,
  startStripeServer,
  startTestApi,
  type TestApi,
  testCounterConfig,
} from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { createKeyVerifier, type KeyVerifier } from '../src/keys/key-verifier.js';
import { createMemoryLimiter } from '../src/limits/memory-limiter.js';
import { createTeamPolicyCache, type TeamPolicyCache } from '../src/limits/team-policies.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

const logger = createLogger({ level: 'silent' });
const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
let api: TestApi;
let stripe: StripeServer;
let upstream: Server;
let gateway: GatewayApp;
let gatewayServer: RunningServer;
let verifier: KeyVerifier;
let policies: TeamPolicyCache;
/** Two buses on one channel: the API publishes on one, the gateway listens on the other (Redis with TEST_REDIS_URL). */
let apiEvents: TeamPolicyEvents;
let gatewayEvents: TeamPolicyEvents;

beforeAll(async () => {
  const channel = `tgtest:${randomBytes(4).toString('hex')}:team-policies`;
  apiEvents = await openTeamPolicyEvents(testCounterConfig(), { logger, channel });
  gatewayEvents =
    apiEvents.driver === 'memory' ? apiEvents : await openTeamPolicyEvents(testCounterConfig(), { logger, channel });
  stripe = await startStripeServer({ webhookSecret });
  api = await startTestApi({
    stripeWebhookSecret: webhookSecret,
    stripe: { secretKey: stripe.apiKey, apiBase: stripe.url },
    teamPolicyEvents: apiEvents,
  });
  stripe.webhookUrl = `${api.server.url}/v1/stripe/webhook`;
  upstream = createServer((_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  await api.database.transaction((tx) =>
    createApi(tx, {
      slug: 'paid-api',
      name: 'Paid',
      upstreams: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`],
    }),
  );
  verifier = createKeyVerifier({ database: api.database, logger });
  // A long TTL: only the invalidation can make the gateway see the payment within the test.
  policies = createTeamPolicyCache({
    load: (teamId) => loadTeamPolicy(api.database, teamId),
    events: gatewayEvents,
    ttlMs: 600_000,
  });
  gateway = createGatewayApp({
    logger,
    trustProxy: false,
    routing: staticRouting(await listApiDefinitions(api.database)),
    keys: verifier,
    limits: { limiter: createMemoryLimiter(), policies },
  });
  gatewayServer = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  policies?.close();
  await gatewayServer?.close(1_000);
  await gateway?.close();
  await verifier?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await stripe?.close();
  await api?.dispose();
  await apiEvents?.close();
  if (gatewayEvents !== apiEvents) await gatewayEvents?.close();
});

async function eventually<T>(read: () => Promise<T>, until: (value: T) => boolean, timeoutMs = 3_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (until(value) || Date.now() - started > timeoutMs) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe(`a failed payment at the gateway (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  it('past_due → 402 payment_required after the grace → paid → served again within seconds', async () => {
    const email = `payer.${randomBytes(4).toString('hex')}@example.com`;
    const password = 'gateway payment passphrase 1';
    await api.database.transaction((tx) => createUserWithPassword(tx, { email, password }));
    const login = await fetch(`${api.server.url}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    const token = ((await login.json()) as { access_token: string }).access_token;
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${api.server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const team = (await call('POST', '/v1/teams', { name: 'Paying team' })).body as { id: string; slug: string };
    const plan = `paid-${randomBytes(3).toString('hex')}`;
    await api.database.query(
      `WITH p AS (INSERT INTO plans (slug, name, trial_days) VALUES ($1, 'Paid', 0) RETURNING id)
       INSERT INTO plan_prices (plan_id, currency, interval, amount_minor) SELECT id, 'USD', 'month', 1000 FROM p`,
      [plan],
    );
    const key = await api.database.transaction((tx) => createApiKey(tx, { teamId: team.id, name: 'payer' }));
    const handlers = createStripeEventHandlers();
    registerSubscriptionStripeHandlers(handlers, {
      provider: createStripeBillingProvider({ secretKey: stripe.apiKey, webhookSecret, apiBase: stripe.url }),
      graceDays: 7,
      teamPolicyEvents: apiEvents,
    });
    const processEvents = async () => {
      await stripe.settled();
      await processStripeEvents({ database: api.database, handlers, logger });
    };
    const gatewayCall = () =>
      fetch(`${gatewayServer.url}/paid-api/thing`, { headers: { authorization: `Bearer ${key.key}` } });

    const started = await call('POST', `/v1/teams/${team.slug}/subscription`, { plan });
    expect(started.status).toBe(202);
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    await stripe.completeCheckout(session?.id as string);
    await processEvents();
    expect((await gatewayCall()).status).toBe(200);

    // A payment fails: past_due, still served during the grace.
    const subscriptionId = String(
      (
        await api.database.query<{ id: string }>(
          "SELECT provider_subscription_id AS id FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'",
          [team.id],
        )
      ).rows[0]?.id,
    );
    const form = async (path: string, body: Record<string, string>) => {
      const response = await fetch(`${stripe.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stripe.apiKey}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });
      return (await response.json()) as { id: string };
    };
    const customer = String(stripe.object(subscriptionId)?.customer);
    await form('/v1/invoiceitems', { customer, amount: '1000', currency: 'usd', subscription: subscriptionId });
    const invoice = await form('/v1/invoices', {
      customer,
      subscription: subscriptionId,
      pending_invoice_items_behavior: 'include',
    });
    await stripe.failInvoicePayment(invoice.id);
    await processEvents();
    expect((await gatewayCall()).status).toBe(200);

    // The grace ends (the lifecycle job on a clock 8 days ahead): 402 at once, despite the long TTL.
    await runSubscriptionLifecycle({
      database: api.database,
      teamPolicyEvents: apiEvents,
      logger,
      now: () => new Date(Date.now() + 8 * 86_400_000),
    });
    const refused = await eventually(gatewayCall, (response) => response.status === 402);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('payment_required');

    // Paying restores access within seconds.
    const paidAt = Date.now();
    await stripe.payInvoice(invoice.id);
    await processEvents();
    const served = await eventually(gatewayCall, (response) => response.status === 200);
    expect(served.status).toBe(200);
    expect(Date.now() - paidAt).toBeLessThan(5_000);
  });
});
