import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createStripeEventHandlers,
  processStripeEvents,
  type StripeEventHandler,
  type StripeEventHandlers,
} from '../src/billing/stripe-webhooks.js';
import { createLogger, type Logger } from '../src/logging/logger.js';
import { startTestApi, type TestApi } from './support/api.js';
import { silentLogger } from './support/backends.js';
import {
  type StripeEventRecord,
  type StripeObject,
  type StripeServer,
  startStripeServer,
} from './support/stripe-server.js';

const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
let testApi: TestApi;
let stripeServer: StripeServer;
let stripe: Stripe;
let webhookUrl: string;

interface StoredEvent {
  id: string;
  type: string;
  object_id: string | null;
  created: string;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date | null;
}

async function storedEvents(): Promise<StoredEvent[]> {
  const result = await testApi.database.query<StoredEvent>(
    'SELECT id, type, object_id, created, status, attempts, last_error, next_attempt_at FROM stripe_events ORDER BY received_at, id',
  );
  return result.rows;
}

/** Posts a webhook as we craft it (another secret, a changed body, a shifted timestamp). */
async function post(payload: string, signature: string | undefined): Promise<{ status: number; code?: string }> {
  const response = await fetch(webhookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      ...(signature ? { 'stripe-signature': signature } : {}),
    },
    body: payload,
  });
  const body = (await response.json()) as { error?: { code: string } };
  return { status: response.status, ...(body.error ? { code: body.error.code } : {}) };
}

/** An event the local Stripe records but does not deliver, and its body as Stripe would send it. */
async function undeliveredEvent(type: string, object: StripeObject) {
  stripeServer.webhookUrl = undefined;
  try {
    const event = await stripeServer.sendEvent(type, object);
    return { event, payload: JSON.stringify(event, null, 2) };
  } finally {
    stripeServer.webhookUrl = webhookUrl;
  }
}

function sign(payload: string, options: { secret?: string; timestamp?: number } = {}): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: options.secret ?? webhookSecret,
    ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
  });
}

function process(handlers: StripeEventHandlers, options: { logger?: Logger; at?: Date } = {}) {
  const at = options.at;
  return processStripeEvents({
    database: testApi.database,
    handlers,
    logger: options.logger ?? silentLogger(),
    ...(at ? { now: () => at } : {}),
  });
}

const subscription = (id: string, status: string) => ({ id, object: 'subscription', status });

beforeAll(async () => {
  testApi = await startTestApi({ stripeWebhookSecret: webhookSecret });
  webhookUrl = `${testApi.server.url}/v1/stripe/webhook`;
  stripeServer = await startStripeServer({ webhookUrl, webhookSecret });
  stripe = new Stripe(stripeServer.apiKey, stripeServer.stripeConfig());
});

afterAll(async () => {
  await stripeServer?.close();
  await testApi?.dispose();
});

beforeEach(async () => {
  await stripeServer.settled();
  await testApi.database.query('DELETE FROM stripe_events');
});

describe('POST /v1/stripe/webhook', () => {
  it('stores a signed event and answers 200 before processing it', async () => {
    const event = await stripeServer.sendEvent('customer.subscription.updated', subscription('sub_1', 'active'));
    expect(stripeServer.deliveries.at(-1)).toMatchObject({ eventId: event.id, status: 200 });
    const [stored] = await storedEvents();
    expect(stored).toMatchObject({
      id: event.id,
      type: 'customer.subscription.updated',
      object_id: 'sub_1',
      created: String(event.created),
      status: 'pending',
      attempts: 0,
    });
  });

  it('stores every event of a paid checkout, each answered 2xx', async () => {
    const customer = await stripe.customers.create({ email: 'payer@example.com' });
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      success_url: 'https://example.com/ok',
      line_items: [
        {
          quantity: 1,
          price_data: {
            currency: 'usd',
            unit_amount: 2500,
            recurring: { interval: 'month' },
            product_data: { name: 'Pro' },
          },
        },
      ],
    });
    await stripeServer.settled();
    const before = stripeServer.deliveries.length;
    await stripeServer.completeCheckout(session.id);
    await stripeServer.settled();
    const sent = stripeServer.deliveries.slice(before);
    expect(sent.map((delivery) => delivery.status)).toEqual(sent.map(() => 200));
    const stored = await storedEvents();
    expect(sent.length).toBeGreaterThan(5);
    expect(stored.map((row) => row.id)).toEqual(expect.arrayContaining(sent.map((delivery) => delivery.eventId)));
    expect(stored.map((row) => row.type)).toContain('checkout.session.completed');
    expect(stored.find((row) => row.type === 'checkout.session.completed')?.object_id).toBe(session.id);
  });

  it('refuses a missing or wrong signature with invalid_signature and stores nothing', async () => {
    const { payload } = await undeliveredEvent('invoice.paid', { id: 'in_1', object: 'invoice' });
    expect(await post(payload, undefined)).toEqual({ status: 400, code: 'invalid_signature' });
    expect(await post(payload, sign(payload, { secret: `whsec_${randomBytes(24).toString('hex')}` }))).toEqual({
      status: 400,
      code: 'invalid_signature',
    });
    expect(await post(payload, 't=123,v1=deadbeef')).toEqual({ status: 400, code: 'invalid_signature' });
    expect(await storedEvents()).toEqual([]);
  });

  it('refuses a tampered body under a real Stripe signature and stores nothing', async () => {
    stripeServer.webhookUrl = undefined;
    await stripeServer.sendEvent('invoice.paid', { id: 'in_2', object: 'invoice', amount_paid: 100 });
    stripeServer.webhookUrl = webhookUrl;
    const event = stripeServer.events.at(-1) as StripeEventRecord;
    const delivery = await stripeServer.redeliver(event.id);
    expect(delivery.status).toBe(200);
    await testApi.database.query('DELETE FROM stripe_events');
    const tampered = delivery.payload.replace('"amount_paid": 100', '"amount_paid": 1');
    expect(tampered).not.toBe(delivery.payload);
    expect(await post(tampered, delivery.signature)).toEqual({ status: 400, code: 'invalid_signature' });
    expect(await storedEvents()).toEqual([]);
  });

  it('refuses a signature made 6 minutes ago or 6 minutes ahead with stale_webhook, accepts 4 minutes either way', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = await undeliveredEvent('invoice.paid', { id: 'in_3', object: 'invoice' });
    expect(await post(old.payload, sign(old.payload, { timestamp: now - 360 }))).toEqual({
      status: 400,
      code: 'stale_webhook',
    });
    const ahead = await undeliveredEvent('invoice.paid', { id: 'in_4', object: 'invoice' });
    expect(await post(ahead.payload, sign(ahead.payload, { timestamp: now + 360 }))).toEqual({
      status: 400,
      code: 'stale_webhook',
    });
    // A stale timestamp never excuses a wrong signature: that is still invalid_signature.
    expect(await post(old.payload, sign(old.payload, { timestamp: now - 360, secret: 'whsec_other' }))).toEqual({
      status: 400,
      code: 'invalid_signature',
    });
    expect(await storedEvents()).toEqual([]);

    expect((await post(old.payload, sign(old.payload, { timestamp: now - 240 }))).status).toBe(200);
    expect((await post(ahead.payload, sign(ahead.payload, { timestamp: now + 240 }))).status).toBe(200);
    expect((await storedEvents()).map((row) => row.id).sort()).toEqual([old.event.id, ahead.event.id].sort());
  });

  it('answers stripe_not_configured on an installation without Stripe settings', async () => {
    const withoutStripe = await startTestApi();
    try {
      const { payload } = await undeliveredEvent('invoice.paid', { id: 'in_n', object: 'invoice' });
      const response = await fetch(`${withoutStripe.server.url}/v1/stripe/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': sign(payload) },
        body: payload,
      });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('stripe_not_configured');
      const rows = await withoutStripe.database.query('SELECT id FROM stripe_events');
      expect(rows.rowCount).toBe(0);
    } finally {
      await withoutStripe.dispose();
    }
  });

  it('stores a redelivered event once and processes it once', async () => {
    const event = await stripeServer.sendEvent('invoice.paid', { id: 'in_5', object: 'invoice' });
    expect((await stripeServer.redeliver(event.id)).status).toBe(200);
    expect(await storedEvents()).toHaveLength(1);

    const handled: string[] = [];
    const handlers = createStripeEventHandlers();
    handlers.register('invoice.paid', async (paid) => {
      handled.push(paid.id);
    });
    expect(await process(handlers)).toMatchObject({ processed: 1 });
    expect((await stripeServer.redeliver(event.id)).status).toBe(200);
    expect(await process(handlers)).toEqual({ processed: 0, ignored: 0, retrying: 0, failed: 0 });
    expect(handled).toEqual([event.id]);
    expect(await storedEvents()).toMatchObject([{ id: event.id, status: 'processed', attempts: 1 }]);
  });
});

describe('processing stored Stripe events', () => {
  it('processes in Stripe created order when delivered out of order, and tells a handler about newer events', async () => {
    const base = Math.floor(Date.now() / 1000) - 100;
    const third = await stripeServer.sendEvent('customer.subscription.updated', subscription('sub_9', 'canceled'), {
      created: base + 30,
    });
    const first = await stripeServer.sendEvent('customer.subscription.updated', subscription('sub_9', 'trialing'), {
      created: base + 10,
    });
    const second = await stripeServer.sendEvent('customer.subscription.updated', subscription('sub_9', 'active'), {
      created: base + 20,
    });
    const seen: { id: string; newer: boolean }[] = [];
    const handlers = createStripeEventHandlers();
    const handler: StripeEventHandler = async (event, context) => {
      seen.push({ id: event.id, newer: await context.newerEventProcessed() });
    };
    handlers.register('customer.subscription.updated', handler);
    expect(await process(handlers)).toMatchObject({ processed: 3 });
    expect(seen).toEqual([
      { id: first.id, newer: false },
      { id: second.id, newer: false },
      { id: third.id, newer: false },
    ]);

    // An older event about the same subscription arriving after the newest was processed.
    const late = await stripeServer.sendEvent('customer.subscription.updated', subscription('sub_9', 'past_due'), {
      created: base + 15,
    });
    const other = await stripeServer.sendEvent('customer.subscription.updated', subscription('sub_10', 'active'), {
      created: base + 15,
    });
    await process(handlers);
    expect(seen.slice(3)).toEqual([
      { id: late.id, newer: true },
      { id: other.id, newer: false },
    ]);
  });

  it('marks an event no handler takes as ignored, and logs its type', async () => {
    const event = await stripeServer.sendEvent('customer.tax_id.created', { id: 'txi_1', object: 'tax_id' });
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    expect(await process(createStripeEventHandlers(), { logger })).toMatchObject({ ignored: 1, processed: 0 });
    expect(await storedEvents()).toMatchObject([{ id: event.id, status: 'ignored' }]);
    expect(lines).toContainEqual(expect.objectContaining({ stripe_event: event.id, type: 'customer.tax_id.created' }));
  });

  it('never processes one event twice when two runs go at once', async () => {
    const sent = [];
    for (let index = 0; index < 20; index++) {
      sent.push(await stripeServer.sendEvent('invoice.paid', { id: `in_c${index}`, object: 'invoice' }));
    }
    const calls = new Map<string, number>();
    const handlers = createStripeEventHandlers();
    handlers.register('invoice.paid', async (event, { tx }) => {
      calls.set(event.id, (calls.get(event.id) ?? 0) + 1);
      await tx.query('SELECT 1');
      await sleep(5);
    });
    const reports = await Promise.all([process(handlers), process(handlers), process(handlers)]);
    expect(reports.reduce((sum, report) => sum + report.processed, 0)).toBe(20);
    expect(reports.filter((report) => report.processed > 0).length).toBeGreaterThan(1);
    expect([...calls.keys()].sort()).toEqual(sent.map((event) => event.id).sort());
    expect([...calls.values()].every((count) => count === 1)).toBe(true);
  });

  it('retries a failing handler with backoff, records the failure, rolls its writes back, and does not block others', async () => {
    await testApi.database.query('CREATE TABLE IF NOT EXISTS stripe_test_effects (event_id text NOT NULL)');
    const failing = await stripeServer.sendEvent('invoice.payment_failed', { id: 'in_f', object: 'invoice' });
    const fine = await stripeServer.sendEvent('invoice.paid', { id: 'in_ok', object: 'invoice' });
    let failures = 2;
    const handlers = createStripeEventHandlers();
    handlers.register('invoice.payment_failed', async (event, { tx }) => {
      await tx.query('INSERT INTO stripe_test_effects (event_id) VALUES ($1)', [event.id]);
      if (failures-- > 0) throw new Error('Stripe answered 500');
    });
    handlers.register('invoice.paid', async () => undefined);

    const t0 = new Date(Date.now() + 1000);
    expect(await process(handlers, { at: t0 })).toEqual({ processed: 1, ignored: 0, retrying: 1, failed: 0 });
    const afterFirst = (await storedEvents()).find((row) => row.id === failing.id);
    expect(afterFirst).toMatchObject({ status: 'pending', attempts: 1, last_error: 'Stripe answered 500' });
    expect(afterFirst?.next_attempt_at?.getTime()).toBe(t0.getTime() + 30_000);
    expect((await storedEvents()).find((row) => row.id === fine.id)?.status).toBe('processed');

    // Not due before its backoff ends.
    expect(await process(handlers, { at: new Date(t0.getTime() + 29_000) })).toMatchObject({ retrying: 0 });
    const t1 = new Date(t0.getTime() + 30_000);
    expect(await process(handlers, { at: t1 })).toMatchObject({ retrying: 1 });
    expect((await storedEvents()).find((row) => row.id === failing.id)?.next_attempt_at?.getTime()).toBe(
      t1.getTime() + 60_000,
    );
    expect(await process(handlers, { at: new Date(t1.getTime() + 60_000) })).toMatchObject({ processed: 1 });
    expect((await storedEvents()).find((row) => row.id === failing.id)).toMatchObject({
      status: 'processed',
      attempts: 3,
      last_error: null,
      next_attempt_at: null,
    });
    // Only the successful attempt's write is kept.
    const effects = await testApi.database.query('SELECT event_id FROM stripe_test_effects');
    expect(effects.rows).toEqual([{ event_id: failing.id }]);
  });
});
