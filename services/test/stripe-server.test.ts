import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { declinedPaymentMethod, type StripeServer, startStripeServer } from './support/stripe-server.js';

/** A webhook endpoint like ours: it keeps each delivery's raw bytes and signature, and answers 200. */
interface Received {
  rawBody: string;
  signature: string;
}

let stripeServer: StripeServer;
let stripe: Stripe;
let receiver: Server;
const received: Received[] = [];

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        rawBody: Buffer.concat(chunks).toString('utf8'),
        signature: String(request.headers['stripe-signature'] ?? ''),
      });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  stripeServer = await startStripeServer({
    webhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/stripe`,
  });
  stripe = new Stripe(stripeServer.apiKey, {
    host: '127.0.0.1',
    port: stripeServer.port,
    protocol: 'http',
    maxNetworkRetries: 0,
    telemetry: false,
  });
});

afterAll(async () => {
  await stripeServer.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

beforeEach(async () => {
  await stripeServer.settled();
  received.length = 0;
});

/** Verifies every delivery as our webhook endpoint will, and returns the events in arrival order. */
function verifiedEvents(): Stripe.Event[] {
  return received.map(({ rawBody, signature }) =>
    stripe.webhooks.constructEvent(rawBody, signature, stripeServer.webhookSecret),
  );
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('the call should have failed'),
    (error: unknown) => error,
  );
}

async function monthlyPrice(unitAmount: number): Promise<Stripe.Price> {
  return stripe.prices.create({
    currency: 'usd',
    unit_amount: unitAmount,
    recurring: { interval: 'month' },
    product_data: { name: `Pro ${unitAmount}` },
  });
}

describe('customers', () => {
  it('round-trips create, retrieve and update, merging metadata like Stripe', async () => {
    const created = await stripe.customers.create({
      email: 'ada@example.com',
      name: 'Ada',
      metadata: { team_id: 'team_1', plan: 'free' },
    });
    expect(created.id).toMatch(/^cus_/);
    expect(created).toMatchObject({ object: 'customer', livemode: false, email: 'ada@example.com' });
    expect(created.created).toBeCloseTo(Date.now() / 1000, -1);

    const updated = await stripe.customers.update(created.id, { name: 'Ada L.', metadata: { plan: '', tier: 'pro' } });
    expect(updated.metadata).toEqual({ team_id: 'team_1', tier: 'pro' });

    const retrieved = await stripe.customers.retrieve(created.id);
    expect(retrieved).toMatchObject({ id: created.id, name: 'Ada L.', metadata: { team_id: 'team_1', tier: 'pro' } });
  });

  it('lists customers filtered by email, newest first, with has_more', async () => {
    const email = `filter-${Date.now()}@example.com`;
    const first = await stripe.customers.create({ email });
    const second = await stripe.customers.create({ email });
    await stripe.customers.create({ email: 'someone-else@example.com' });

    const page = await stripe.customers.list({ email, limit: 1 });
    expect(page).toMatchObject({ object: 'list', url: '/v1/customers', has_more: true });
    expect(page.data.map((customer) => customer.id)).toEqual([second.id]);
    const all = await stripe.customers.list({ email });
    expect(all.data.map((customer) => customer.id)).toEqual([second.id, first.id]);
    expect(all.has_more).toBe(false);
  });
});

describe('the wire format', () => {
  it('parses nested form parameters: metadata, line_items with price_data and recurring, subscription_data', async () => {
    const customer = await stripe.customers.create({ email: 'nested@example.com' });
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      client_reference_id: 'team_42',
      metadata: { team_id: 'team_42' },
      success_url: 'http://127.0.0.1/billing/success?session={CHECKOUT_SESSION_ID}',
      cancel_url: 'http://127.0.0.1/billing/cancel',
      line_items: [
        {
          quantity: 3,
          price_data: {
            currency: 'usd',
            unit_amount: 2500,
            recurring: { interval: 'month' },
            product_data: { name: 'Seats' },
          },
        },
      ],
      subscription_data: { trial_period_days: 14, metadata: { team_id: 'team_42' } },
    });

    const request = stripeServer.requests.find((entry) => entry.path === '/v1/checkout/sessions');
    expect(request?.body).toMatchObject({
      mode: 'subscription',
      metadata: { team_id: 'team_42' },
      line_items: [
        {
          quantity: '3',
          price_data: { currency: 'usd', unit_amount: '2500', recurring: { interval: 'month' } },
        },
      ],
      subscription_data: { trial_period_days: '14', metadata: { team_id: 'team_42' } },
    });
    expect(session.id).toMatch(/^cs_test_/);
    expect(session).toMatchObject({
      object: 'checkout.session',
      status: 'open',
      amount_total: 7500,
      currency: 'usd',
      client_reference_id: 'team_42',
      metadata: { team_id: 'team_42' },
    });
    expect(session.url?.startsWith(`${stripeServer.url}/checkout/`)).toBe(true);

    const expanded = await stripe.checkout.sessions.retrieve(session.id, { expand: ['line_items', 'customer'] });
    expect(expanded.line_items?.data).toMatchObject([
      { quantity: 3, amount_total: 7500, price: { unit_amount: 2500 } },
    ]);
    expect(expanded.customer).toMatchObject({ id: customer.id, object: 'customer' });
  });

  it('rejects an unknown parameter and a missing one with invalid_request_error and the param', async () => {
    const unknown = await rejection(
      stripe.customers.create({ emial: 'typo@example.com' } as Stripe.CustomerCreateParams),
    );
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(unknown).toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'emial' });

    const missing = await rejection(
      stripe.invoiceItems.create({ customer: (await stripe.customers.create()).id, amount: 100 }),
    );
    expect(missing).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'currency' });
  });
});

describe('idempotency', () => {
  it('replays the first response for a repeated key and parameters, and records the key', async () => {
    const before = stripeServer.objects('customer').length;
    const key = `tollgate-customer-team_7-${Date.now()}`;
    const first = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: key });
    const again = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: key });

    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(stripeServer.objects('customer')).toHaveLength(before + 1);
    expect(stripeServer.idempotencyKeys).toContain(key);
    expect(
      stripeServer.requests.filter((entry) => entry.idempotencyKey === key).map((entry) => entry.replayed),
    ).toEqual([false, true]);
  });

  it("refuses a key reused with other parameters with the SDK's StripeIdempotencyError", async () => {
    const key = `tollgate-customer-team_8-${Date.now()}`;
    await stripe.customers.create({ email: 'one@example.com' }, { idempotencyKey: key });
    const error = await rejection(stripe.customers.create({ email: 'two@example.com' }, { idempotencyKey: key }));

    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(error).toMatchObject({ statusCode: 400, type: 'StripeIdempotencyError', rawType: 'idempotency_error' });
    expect((error as Error).message).toMatch(
      /^Keys for idempotent requests can only be used with the same parameters they were first used with\./,
    );
  });

  it('keys every POST the SDK sends, even with retries off', async () => {
    await stripe.customers.create({ email: 'auto-key@example.com' });
    expect(stripeServer.requests.at(-1)?.idempotencyKey).toMatch(/^stripe-node-retry-/);
  });
});

describe('errors', () => {
  it('answers 401 without an API key and with a key that is not a test secret key', async () => {
    const anonymous = new Stripe('', { ...stripeServer.stripeConfig(), authenticator: async () => {} });
    const missing = await rejection(anonymous.customers.list());
    expect(missing).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(missing).toMatchObject({ statusCode: 401 });
    expect((missing as Error).message).toMatch(/You did not provide an API key/);

    const live = new Stripe('sk_live_notforthisserver', stripeServer.stripeConfig());
    const invalidKey = await rejection(live.customers.list());
    expect(invalidKey).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect((invalidKey as Error).message).toMatch(/^Invalid API Key provided/);
  });

  it('answers 404 resource_missing for an unknown id', async () => {
    const error = await rejection(stripe.customers.retrieve('cus_doesnotexist'));
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      param: 'id',
      message: "No such customer: 'cus_doesnotexist'",
    });
  });
});

describe('checkout and webhooks', () => {
  it('completing a subscription checkout sends signed events our endpoint can verify, and a tampered body fails', async () => {
    const customer = await stripe.customers.create({ email: 'checkout@example.com' });
    const price = await monthlyPrice(4900);
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      line_items: [{ price: price.id, quantity: 1 }],
      metadata: { team_id: 'team_9' },
      success_url: 'http://127.0.0.1/success',
    });
    await stripeServer.settled();
    received.length = 0;

    await stripeServer.completeCheckout(session.id);

    const events = verifiedEvents();
    const types = events.map((event) => event.type);
    expect(types).toContain('customer.subscription.created');
    expect(types).toContain('invoice.paid');
    expect(types.at(-1)).toBe('checkout.session.completed');
    const completed = events.at(-1) as Stripe.CheckoutSessionCompletedEvent;
    expect(completed).toMatchObject({ object: 'event', livemode: false, api_version: Stripe.API_VERSION });
    expect(completed.id).toMatch(/^evt_/);
    expect(completed.data.object).toMatchObject({
      id: session.id,
      status: 'complete',
      payment_status: 'paid',
      metadata: { team_id: 'team_9' },
    });

    const subscriptionId = String(completed.data.object.subscription);
    const subscription = await stripe.subscriptions.retrieve(subscriptionId);
    expect(subscription).toMatchObject({ status: 'active', customer: customer.id });
    expect(subscription.items.data[0]?.price.id).toBe(price.id);
    const invoice = await stripe.invoices.retrieve(String(subscription.latest_invoice));
    expect(invoice).toMatchObject({ status: 'paid', amount_paid: 4900, billing_reason: 'subscription_create' });
    expect(invoice.parent?.subscription_details?.subscription).toBe(subscriptionId);

    const delivery = received.at(-1);
    if (!delivery) throw new Error('no delivery');
    const tampered = delivery.rawBody.replace('"status": "complete"', '"status": "expired"');
    expect(tampered).not.toBe(delivery.rawBody);
    expect(() => stripe.webhooks.constructEvent(tampered, delivery.signature, stripeServer.webhookSecret)).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
  });

  it('a payment-mode checkout succeeds a payment intent, and a refund of its charge sends charge.refunded', async () => {
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      customer_creation: 'always',
      customer_email: 'credits@example.com',
      line_items: [
        { quantity: 2, price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: '1,000 credits' } } },
      ],
      payment_intent_data: { metadata: { pack: 'credits_1000' } },
    });
    await stripeServer.completeCheckout(session.id);
    const completed = await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
    const intent = completed.payment_intent as Stripe.PaymentIntent;
    expect(intent).toMatchObject({ status: 'succeeded', amount: 2000, metadata: { pack: 'credits_1000' } });
    expect(verifiedEvents().map((event) => event.type)).toEqual(
      expect.arrayContaining(['payment_intent.succeeded', 'checkout.session.completed']),
    );

    received.length = 0;
    const refund = await stripe.refunds.create({ charge: String(intent.latest_charge), amount: 500 });
    expect(refund).toMatchObject({ object: 'refund', amount: 500, status: 'succeeded' });
    expect(refund.id).toMatch(/^re_/);
    await stripeServer.settled();
    const refunded = verifiedEvents().find((event) => event.type === 'charge.refunded') as Stripe.ChargeRefundedEvent;
    expect(refunded.data.object).toMatchObject({ amount_refunded: 500, refunded: false });
    expect(refunded.request?.idempotency_key).toBe(refund.lastResponse.idempotencyKey);

    const rest = await stripeServer.refundCharge(String(intent.latest_charge));
    expect(rest).toMatchObject({ amount: 1500 });
    expect(await stripe.charges.retrieve(String(intent.latest_charge))).toMatchObject({
      amount_refunded: 2000,
      refunded: true,
    });
    const again = await rejection(stripe.refunds.create({ charge: String(intent.latest_charge) }));
    expect(again).toMatchObject({ statusCode: 400, code: 'charge_already_refunded' });
  });
});

describe('invoices', () => {
  it('sums its invoice items into amount_due and total, then finalizes and pays through the API', async () => {
    const customer = await stripe.customers.create({ email: 'invoice@example.com' });
    const invoice = await stripe.invoices.create({ customer: customer.id, metadata: { period: '2026-11' } });
    expect(invoice).toMatchObject({ status: 'draft', amount_due: 0, total: 0 });
    expect(invoice.id).toMatch(/^in_/);

    const calls = await stripe.invoiceItems.create({
      customer: customer.id,
      invoice: invoice.id,
      amount: 1234,
      currency: 'usd',
      description: '30,850 calls at $0.04',
      metadata: { line: 'usage' },
    });
    expect(calls.id).toMatch(/^ii_/);
    await stripe.invoiceItems.create({
      customer: customer.id,
      invoice: invoice.id,
      amount: 4900,
      currency: 'usd',
      description: 'Pro plan',
    });
    await stripe.invoiceItems.create({ customer: customer.id, amount: 999, currency: 'usd', description: 'pending' });

    const draft = await stripe.invoices.retrieve(invoice.id);
    expect(draft).toMatchObject({ subtotal: 6134, total: 6134, amount_due: 6134, amount_remaining: 6134 });
    expect(draft.lines.data.map((line) => line.amount)).toEqual([1234, 4900]);
    const items = await stripe.invoiceItems.list({ invoice: invoice.id });
    expect(items.data.reduce((sum, item) => sum + item.amount, 0)).toBe(draft.total);
    const pending = await stripe.invoiceItems.list({ customer: customer.id, pending: true });
    expect(pending.data.map((item) => item.amount)).toEqual([999]);

    const open = await stripe.invoices.finalizeInvoice(invoice.id);
    expect(open.status).toBe('open');
    expect(open.number).toMatch(/-\d{4}$/);
    const closed = await rejection(
      stripe.invoiceItems.create({ customer: customer.id, invoice: invoice.id, amount: 1, currency: 'usd' }),
    );
    expect(closed).toMatchObject({ statusCode: 400, code: 'invoice_not_editable' });

    const paid = await stripe.invoices.pay(invoice.id);
    expect(paid).toMatchObject({ status: 'paid', amount_paid: 6134, amount_remaining: 0 });
    const intentId = paid.payments?.data[0]?.payment.payment_intent;
    expect(await stripe.paymentIntents.retrieve(String(intentId))).toMatchObject({ status: 'succeeded', amount: 6134 });

    const listed = await stripe.invoices.list({ customer: customer.id, status: 'paid' });
    expect(listed.data.map((entry) => entry.id)).toEqual([invoice.id]);
  });

  it('a failed payment makes the subscription past_due, and a later payment makes it active again', async () => {
    const customer = await stripe.customers.create({ email: 'dunning@example.com' });
    const price = await monthlyPrice(2000);
    const subscription = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id }],
      metadata: { team_id: 'team_dunning' },
    });
    expect(subscription.id).toMatch(/^sub_/);
    const invoice = await stripe.invoices.create({
      customer: customer.id,
      subscription: subscription.id,
    });
    await stripe.invoiceItems.create({
      customer: customer.id,
      invoice: invoice.id,
      subscription: subscription.id,
      amount: 750,
      currency: 'usd',
      description: 'overage',
    });
    received.length = 0;

    await stripeServer.failInvoicePayment(invoice.id);
    const failedTypes = verifiedEvents().map((event) => event.type);
    expect(failedTypes).toEqual(expect.arrayContaining(['invoice.payment_failed', 'customer.subscription.updated']));
    const updated = verifiedEvents().find(
      (event) => event.type === 'customer.subscription.updated',
    ) as Stripe.CustomerSubscriptionUpdatedEvent;
    expect(updated.data.object.status).toBe('past_due');
    expect(updated.data.previous_attributes).toMatchObject({ status: 'active' });
    expect(await stripe.invoices.retrieve(invoice.id)).toMatchObject({ status: 'open', attempt_count: 1 });

    const declined = await rejection(stripe.invoices.pay(invoice.id, { payment_method: declinedPaymentMethod }));
    expect(declined).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(declined).toMatchObject({ statusCode: 402, code: 'card_declined' });

    received.length = 0;
    await stripeServer.payInvoice(invoice.id);
    expect(verifiedEvents().map((event) => event.type)).toEqual(
      expect.arrayContaining(['invoice.paid', 'customer.subscription.updated']),
    );
    expect(await stripe.subscriptions.retrieve(subscription.id)).toMatchObject({ status: 'active' });
  });
});

describe('subscriptions', () => {
  it('updates items with prorations, cancels at period end, cancels via DELETE, and lists by customer and status', async () => {
    const customer = await stripe.customers.create({ email: 'subs@example.com' });
    const basic = await monthlyPrice(1000);
    const pro = await monthlyPrice(3000);
    const subscription = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: basic.id }] });
    const item = subscription.items.data[0];
    expect(item?.current_period_end).toBeGreaterThan(item?.current_period_start ?? Number.POSITIVE_INFINITY);

    const upgraded = await stripe.subscriptions.update(subscription.id, {
      items: [{ id: item?.id, price: pro.id }],
      proration_behavior: 'create_prorations',
    });
    expect(upgraded.items.data.map((entry) => entry.price.id)).toEqual([pro.id]);
    const prorations = await stripe.invoiceItems.list({ customer: customer.id, pending: true });
    expect(prorations.data.every((entry) => entry.proration)).toBe(true);
    // Credit for the unused basic time, charge for the remaining pro time: about +2000 for a whole month.
    const net = prorations.data.reduce((sum, entry) => sum + entry.amount, 0);
    expect(net).toBeGreaterThan(1990);
    expect(net).toBeLessThanOrEqual(2000);

    const noProration = await stripe.subscriptions.update(subscription.id, {
      items: [{ id: item?.id, quantity: 2 }],
      proration_behavior: 'none',
    });
    expect(noProration.items.data[0]?.quantity).toBe(2);
    expect((await stripe.invoiceItems.list({ customer: customer.id, pending: true })).data).toHaveLength(2);

    const ending = await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    expect(ending).toMatchObject({ cancel_at_period_end: true, status: 'active' });

    const other = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: basic.id }] });
    received.length = 0;
    const canceled = await stripe.subscriptions.cancel(other.id);
    expect(canceled).toMatchObject({ status: 'canceled' });
    await stripeServer.settled();
    expect(verifiedEvents().map((event) => event.type)).toContain('customer.subscription.deleted');

    const live = await stripe.subscriptions.list({ customer: customer.id });
    expect(live.data.map((entry) => entry.id)).toEqual([subscription.id]);
    const ended = await stripe.subscriptions.list({ customer: customer.id, status: 'canceled' });
    expect(ended.data.map((entry) => entry.id)).toEqual([other.id]);
  });

  it('advancing the clock renews a subscription with a paid invoice that pulls in pending items', async () => {
    const customer = await stripe.customers.create({ email: 'renewal@example.com' });
    const price = await monthlyPrice(1500);
    const subscription = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }] });
    await stripe.invoiceItems.create({
      customer: customer.id,
      subscription: subscription.id,
      amount: 321,
      currency: 'usd',
      description: 'usage',
    });
    const periodEnd = subscription.items.data[0]?.current_period_end ?? 0;

    await stripeServer.advanceClock(periodEnd - stripeServer.now() + 1);

    const renewed = await stripe.subscriptions.retrieve(subscription.id);
    expect(renewed.items.data[0]?.current_period_start).toBe(periodEnd);
    const invoice = await stripe.invoices.retrieve(String(renewed.latest_invoice));
    expect(invoice).toMatchObject({ billing_reason: 'subscription_cycle', status: 'paid', amount_paid: 1821 });
  });
});

describe('test-control events', () => {
  it('sends any event with a chosen created time, and redelivers one event as a duplicate', async () => {
    const customer = await stripe.customers.create({ email: 'events@example.com' });
    await stripeServer.settled();
    received.length = 0;
    const stale = await stripeServer.sendEvent(
      'customer.updated',
      { id: customer.id, object: 'customer' },
      {
        created: 1_600_000_000,
      },
    );
    await stripeServer.redeliver(stale.id);

    const events = verifiedEvents();
    expect(events.map((event) => [event.id, event.created])).toEqual([
      [stale.id, 1_600_000_000],
      [stale.id, 1_600_000_000],
    ]);
    expect(await stripe.events.retrieve(stale.id)).toMatchObject({ id: stale.id, type: 'customer.updated' });
  });
});
