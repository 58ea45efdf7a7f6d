import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Decimal } from 'decimal.js';
import Stripe from 'stripe';

/**
 * A local server speaking the part of Stripe's v1 REST API that Tollgate's billing uses, for tests
 * that drive the official `stripe` SDK against it (`new Stripe(key, server.stripeConfig())`).
 *
 * It speaks Stripe's wire format (docs.stripe.com/api): form-encoded request bodies with nested
 * bracket keys, `Authorization: Bearer sk_test_...`, JSON objects with Stripe's ids, shapes and
 * list envelopes, Stripe's error bodies and status codes, and idempotency keys (a POST repeated with
 * the same `Idempotency-Key` and parameters replays the first response with
 * `Idempotent-Replayed: true`; the same key with other parameters is a 400 `idempotency_error`).
 * Object shapes follow the API version of the installed SDK (`Stripe.API_VERSION`), e.g. an
 * invoice's subscription is under `parent.subscription_details` and billing periods sit on
 * subscription items.
 *
 * State lives in memory. Every change, through the API or through a test-control helper
 * (`completeCheckout`, `payInvoice`, ...), records the events Stripe would record and delivers them
 * in order, signed like Stripe signs them (`Stripe-Signature`), to `webhookUrl`. Helpers resolve once
 * their events are delivered; `settled()` waits for deliveries caused by API calls.
 *
 * What it simplifies is listed in docs/stripe.md ("Testing against a local Stripe").
 */

/** Any JSON object Stripe returns: an `id`, an `object` naming its type, and its fields. */
export interface StripeObject {
  id: string;
  object: string;
  [field: string]: unknown;
}

export interface StripeEventRecord extends StripeObject {
  object: 'event';
  type: string;
  created: number;
  api_version: string;
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  data: { object: StripeObject; previous_attributes?: Record<string, unknown> };
}

export interface StripeRequestRecord {
  method: string;
  path: string;
  /** The query string, parsed like a form body. */
  query: StripeParams;
  /** The form body, parsed into nested objects and arrays. */
  body: StripeParams;
  idempotencyKey: string | undefined;
  stripeVersion: string | undefined;
  status: number;
  /** True when the answer was the replay of an earlier request with the same idempotency key. */
  replayed: boolean;
  requestId: string;
}

export interface StripeWebhookDelivery {
  eventId: string;
  type: string;
  /** The receiver's status, or undefined when it could not be reached (`error` says why). */
  status: number | undefined;
  error?: string;
  /** The exact bytes that were signed and sent. */
  payload: string;
  signature: string;
}

export interface StripeServerOptions {
  /** Where events are POSTed (loopback only); without it, events are recorded and not sent. */
  webhookUrl?: string;
  /** The endpoint's signing secret; a fresh `whsec_...` when omitted. */
  webhookSecret?: string;
  /** Event types the endpoint subscribes to, like a webhook endpoint's `enabled_events`; all by default. */
  enabledEvents?: string[];
}

export interface SendEventOptions {
  /** Unix seconds; set it in the past or the future to play stale or early events. */
  created?: number;
  /** Reuse an id to play a duplicate delivery of one event. */
  id?: string;
  previousAttributes?: Record<string, unknown>;
}

export interface StripeServer {
  /** The API base, e.g. http://127.0.0.1:54321 (for STRIPE_API_BASE). */
  url: string;
  port: number;
  /** A key the server accepts; any `sk_test_...` or `rk_test_...` key is accepted. */
  apiKey: string;
  webhookSecret: string;
  /** Where events go; may be set after start (the receiving server often starts later). */
  webhookUrl: string | undefined;
  /** The SDK options that point it here: `new Stripe(server.apiKey, server.stripeConfig())`. */
  stripeConfig(): Stripe.StripeConfig;
  /** Every API request, oldest first. */
  requests: StripeRequestRecord[];
  /** Every distinct idempotency key seen, in first-seen order. */
  readonly idempotencyKeys: string[];
  /** Every event recorded, oldest first (also listed at GET /v1/events). */
  events: StripeEventRecord[];
  /** Every webhook delivery attempt, in order. */
  deliveries: StripeWebhookDelivery[];
  /** Copies of the stored objects of one type (`'customer'`, `'invoice'`, `'checkout.session'`...), oldest first. */
  objects(type: string): StripeObject[];
  /** A copy of one stored object, or undefined. */
  object(id: string): StripeObject | undefined;
  /** Pays for an open checkout session as a customer would on the hosted page. */
  completeCheckout(sessionId: string): Promise<StripeObject>;
  /** Collects a draft or open invoice successfully (`invoice.paid`). */
  payInvoice(invoiceId: string): Promise<StripeObject>;
  /** Declines the payment of an invoice (`invoice.payment_failed`; its subscription becomes `past_due`). */
  failInvoicePayment(invoiceId: string): Promise<StripeObject>;
  /** Refunds a charge, fully or `amount` minor units of it (`charge.refunded`). Resolves to the refund. */
  refundCharge(chargeId: string, options?: { amount?: number }): Promise<StripeObject>;
  /** Cancels a subscription at once, as from the Dashboard (`customer.subscription.deleted`). */
  deleteSubscription(subscriptionId: string): Promise<StripeObject>;
  /** Records and delivers an event of any type carrying `object`, e.g. a duplicate or a stale one. */
  sendEvent(type: string, object: StripeObject, options?: SendEventOptions): Promise<StripeEventRecord>;
  /** Delivers an already recorded event again, byte for byte the same event (a new signature). */
  redeliver(eventId: string): Promise<StripeWebhookDelivery>;
  /**
   * Moves the server's clock forward like a test clock: subscriptions whose period ends renew (a
   * `subscription_cycle` invoice, paid) or end (`cancel_at_period_end`), trials end, open checkout
   * sessions expire.
   */
  advanceClock(seconds: number): Promise<void>;
  /** The server's clock in unix seconds (real time plus every `advanceClock`). */
  now(): number;
  /** Resolves when every event recorded so far has been delivered. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** A parsed form or query: nested objects and arrays of strings, as Stripe reads bracket keys. */
export interface StripeParams {
  [key: string]: StripeParam;
}
export type StripeParam = string | StripeParam[] | StripeParams;

/** Stripe's test payment method that always fails with `card_declined` (docs.stripe.com/testing). */
export const declinedPaymentMethod = 'pm_card_chargeDeclined';

const apiVersion = Stripe.API_VERSION;
const accountName = 'Tollgate (test)';

// ---------------------------------------------------------------------------------------------
// Wire format

class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { type: string; code?: string; message: string; param?: string; [field: string]: unknown },
  ) {
    super(body.message);
  }
}

function invalid(message: string, extra: { code?: string; param?: string } = {}): StripeApiError {
  return new StripeApiError(400, { type: 'invalid_request_error', ...extra, message });
}

function missingParam(param: string): StripeApiError {
  return invalid(`Missing required param: ${param}.`, { code: 'parameter_missing', param });
}

function noSuch(kind: string, id: string, param: string, status = 400): StripeApiError {
  return new StripeApiError(status, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${kind}: '${id}'`,
    param,
  });
}

/** `a[b][0][c]=v&expand[]=x` into `{ a: { b: [{ c: 'v' }] }, expand: ['x'] }`. */
export function parseStripeForm(text: string): StripeParams {
  const root: StripeParams = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    const segments = match
      ? [match[1] ?? key, ...[...(match[2] ?? '').matchAll(/\[([^[\]]*)\]/g)].map((part) => part[1] ?? '')]
      : [key];
    let node = root;
    segments.forEach((segment, index) => {
      const name = segment === '' ? String(Object.keys(node).length) : segment;
      if (index === segments.length - 1) {
        node[name] = value;
        return;
      }
      const child = node[name];
      if (typeof child !== 'object' || Array.isArray(child)) node[name] = {};
      node = node[name] as StripeParams;
    });
  }
  return arrayify(root, '') as StripeParams;
}

/** Objects whose keys are all indexes become arrays (except inside metadata, where keys are free text). */
function arrayify(node: StripeParams, key: string): StripeParam {
  for (const [name, child] of Object.entries(node)) {
    if (typeof child === 'object' && !Array.isArray(child)) node[name] = arrayify(child, name);
  }
  const keys = Object.keys(node);
  if (key === 'metadata' || keys.length === 0 || !keys.every((name) => /^\d+$/.test(name))) return node;
  return keys
    .sort((a, b) => Number(a) - Number(b))
    .map((name) => node[name])
    .filter((child): child is StripeParam => child !== undefined);
}

function isParams(value: StripeParam | undefined): value is StripeParams {
  return typeof value === 'object' && !Array.isArray(value);
}

/** Rejects parameters outside `names` (space-separated), as Stripe rejects unknown ones. */
function allow(params: StripeParams, names: string, prefix = ''): void {
  const allowed = names.split(' ');
  for (const key of Object.keys(params)) {
    if (key === 'expand' && prefix === '') continue;
    if (!allowed.includes(key)) {
      const param = prefix ? `${prefix}[${key}]` : key;
      throw invalid(
        `Received unknown parameter: ${param} (the local Stripe server accepts only the parameters it implements: services/test/support/stripe-server.ts)`,
        { code: 'parameter_unknown', param },
      );
    }
  }
}

function str(params: StripeParams, key: string, path = key): string | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`Invalid string: ${path} must be a string`, { param: path });
  return value;
}

function requiredStr(params: StripeParams, key: string, path = key): string {
  const value = str(params, key, path);
  if (value === undefined || value === '') throw missingParam(path);
  return value;
}

function int(params: StripeParams, key: string, path = key): number | undefined {
  const value = str(params, key, path);
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw invalid(`Invalid integer: ${value}`, { code: 'parameter_invalid_integer', param: path });
  }
  return Number(value);
}

function bool(params: StripeParams, key: string, path = key): boolean | undefined {
  const value = str(params, key, path);
  if (value === undefined || value === '') return undefined;
  if (value !== 'true' && value !== 'false') throw invalid(`Invalid boolean: ${value}`, { param: path });
  return value === 'true';
}

function oneOf<T extends string>(params: StripeParams, key: string, values: readonly T[], path = key): T | undefined {
  const value = str(params, key, path);
  if (value === undefined) return undefined;
  if (!(values as readonly string[]).includes(value)) {
    throw invalid(`Invalid ${path}: must be one of ${values.join(', ')}`, {
      code: 'parameter_invalid_string',
      param: path,
    });
  }
  return value as T;
}

function obj(params: StripeParams, key: string, path = key): StripeParams | undefined {
  const value = params[key];
  if (value === undefined || value === '') return undefined;
  if (!isParams(value)) throw invalid(`Invalid object: ${path} must be a hash`, { param: path });
  return value;
}

function arr(params: StripeParams, key: string, path = key): StripeParam[] {
  const value = params[key];
  if (value === undefined || value === '') return [];
  if (!Array.isArray(value)) throw invalid(`Invalid array: ${path} must be an array`, { param: path });
  return value;
}

function arrOfObjects(params: StripeParams, key: string): StripeParams[] {
  return arr(params, key).map((item, index) => {
    if (!isParams(item))
      throw invalid(`Invalid object: ${key}[${index}] must be a hash`, { param: `${key}[${index}]` });
    return item;
  });
}

/** Stripe's metadata rules (docs.stripe.com/metadata): merge on update, an empty value deletes a key. */
function metadataFrom(
  params: StripeParams,
  current: Record<string, string> = {},
  path = 'metadata',
): Record<string, string> {
  const value = params.metadata;
  if (value === undefined) return current;
  if (value === '') return {};
  if (!isParams(value)) throw invalid(`Invalid hash: ${path} must be a hash`, { param: path });
  const next = { ...current };
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') throw invalid(`Invalid string: ${path}[${key}]`, { param: `${path}[${key}]` });
    if (key.length > 40) throw invalid('Metadata keys can have up to 40 characters.', { param: `${path}[${key}]` });
    if (entry.length > 500)
      throw invalid('Metadata values can have up to 500 characters.', { param: `${path}[${key}]` });
    if (entry === '') delete next[key];
    else next[key] = entry;
  }
  if (Object.keys(next).length > 50) throw invalid('Metadata can have up to 50 keys.', { param: path });
  return next;
}

function randomId(prefix: string, length = 24): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  let id = prefix;
  for (const byte of bytes) id += alphabet[byte % alphabet.length];
  return id;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** `months` calendar months after `unixSeconds`, clamped to the month's last day like Stripe's billing anchor. */
function addMonths(unixSeconds: number, months: number): number {
  const date = new Date(unixSeconds * 1000);
  const day = date.getUTCDate();
  const target = new Date(date.getTime());
  target.setUTCDate(1);
  target.setUTCMonth(target.getUTCMonth() + months);
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, lastDay));
  return Math.floor(target.getTime() / 1000);
}

function addInterval(unixSeconds: number, interval: string, count: number): number {
  switch (interval) {
    case 'day':
      return unixSeconds + 86_400 * count;
    case 'week':
      return unixSeconds + 7 * 86_400 * count;
    case 'year':
      return addMonths(unixSeconds, 12 * count);
    default:
      return addMonths(unixSeconds, count);
  }
}

/** Minimum charge amounts (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts), minor units. */
const minimumCharge: Record<string, number> = { usd: 50, eur: 50, gbp: 30 };

// ---------------------------------------------------------------------------------------------
// Object shapes (the fields this server maintains; the rest are Stripe's defaults)

type Metadata = Record<string, string>;

interface ListObject<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  total_count?: number;
  url: string;
}

interface Recurring {
  interval: string;
  interval_count: number;
  meter: null;
  trial_period_days: null;
  usage_type: 'licensed';
}

interface Price extends StripeObject {
  object: 'price';
  active: boolean;
  currency: string;
  product: string;
  unit_amount: number | null;
  unit_amount_decimal: string;
  recurring: Recurring | null;
  type: 'one_time' | 'recurring';
  metadata: Metadata;
}

interface Customer extends StripeObject {
  object: 'customer';
  email: string | null;
  name: string | null;
  invoice_prefix: string;
  metadata: Metadata;
  deleted?: true;
}

interface SubscriptionItem extends StripeObject {
  object: 'subscription_item';
  current_period_start: number;
  current_period_end: number;
  price: Price;
  plan: Record<string, unknown>;
  quantity: number;
  subscription: string;
  metadata: Metadata;
}

interface Subscription extends StripeObject {
  object: 'subscription';
  customer: string;
  currency: string;
  status: string;
  items: ListObject<SubscriptionItem>;
  cancel_at: number | null;
  cancel_at_period_end: boolean;
  canceled_at: number | null;
  ended_at: number | null;
  trial_start: number | null;
  trial_end: number | null;
  latest_invoice: string | null;
  collection_method: string;
  metadata: Metadata;
  cancellation_details: { comment: string | null; feedback: string | null; reason: string | null };
}

interface InvoiceItem extends StripeObject {
  object: 'invoiceitem';
  amount: number;
  currency: string;
  customer: string;
  description: string | null;
  invoice: string | null;
  metadata: Metadata;
  parent: { type: 'subscription_details'; subscription_details: { subscription: string } } | null;
  period: { start: number; end: number };
  pricing: {
    type: 'price_details';
    price_details: { price: string; product: string };
    unit_amount_decimal: string;
  } | null;
  proration: boolean;
  quantity: number;
}

interface InvoiceLine extends StripeObject {
  object: 'line_item';
  amount: number;
  currency: string;
  description: string | null;
  invoice: string;
  metadata: Metadata;
  subscription: string | null;
}

interface InvoicePayment extends StripeObject {
  object: 'invoice_payment';
  amount_paid: number | null;
  status: string;
  payment: { type: 'payment_intent'; payment_intent: string };
  status_transitions: { canceled_at: number | null; paid_at: number | null };
}

interface Invoice extends StripeObject {
  object: 'invoice';
  customer: string;
  currency: string;
  status: 'draft' | 'open' | 'paid' | 'void' | 'uncollectible';
  lines: ListObject<InvoiceLine>;
  payments: ListObject<InvoicePayment>;
  amount_due: number;
  amount_paid: number;
  amount_remaining: number;
  subtotal: number;
  subtotal_excluding_tax: number;
  total: number;
  total_excluding_tax: number;
  /** What credit notes took off before payment (from amount_due) and after it. */
  pre_payment_credit_notes_amount: number;
  post_payment_credit_notes_amount: number;
  attempt_count: number;
  attempted: boolean;
  next_payment_attempt: number | null;
  number: string | null;
  collection_method: string;
  parent: { type: 'subscription_details'; subscription_details: { subscription: string; metadata: Metadata } } | null;
  status_transitions: {
    finalized_at: number | null;
    marked_uncollectible_at: number | null;
    paid_at: number | null;
    voided_at: number | null;
  };
  metadata: Metadata;
}

interface PaymentIntent extends StripeObject {
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  currency: string;
  customer: string | null;
  status: string;
  latest_charge: string | null;
  payment_method: string | null;
  last_payment_error: Record<string, unknown> | null;
  metadata: Metadata;
}

interface Charge extends StripeObject {
  object: 'charge';
  amount: number;
  amount_refunded: number;
  currency: string;
  customer: string | null;
  payment_intent: string | null;
  refunded: boolean;
  status: string;
}

interface CheckoutSession extends StripeObject {
  object: 'checkout.session';
  mode: 'payment' | 'subscription';
  status: 'open' | 'complete' | 'expired';
  payment_status: string;
  customer: string | null;
  customer_email: string | null;
  currency: string;
  amount_total: number;
  expires_at: number;
  success_url: string | null;
  cancel_url: string | null;
  metadata: Metadata;
  subscription: string | null;
  payment_intent: string | null;
  invoice: string | null;
}

/** A line of a checkout session, kept aside because Stripe only includes `line_items` on request. */
interface SessionLine {
  id: string;
  price: Price;
  quantity: number;
}

interface SubscriptionDefaults {
  trialPeriodDays?: number;
  metadata: Metadata;
  description?: string | null;
}

// ---------------------------------------------------------------------------------------------

export async function startStripeServer(options: StripeServerOptions = {}): Promise<StripeServer> {
  const webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(24).toString('hex')}`;
  let webhookUrl = options.webhookUrl;
  assertLoopback(webhookUrl);
  const enabledEvents = options.enabledEvents ?? ['*'];
  const apiKey = `sk_test_${randomId('', 32)}`;
  let clockOffset = 0;
  let baseUrl = '';

  const store = new Map<string, StripeObject>();
  const sessionLines = new Map<string, SessionLine[]>();
  /** Subscription lines of an invoice (their own ids), kept before the invoice-item lines. */
  const subscriptionLines = new Map<string, InvoiceLine[]>();
  const invoiceLineIds = new Map<string, string>();
  const idempotent = new Map<
    string,
    { fingerprint: string; status: number; body: string; requestId: string; stripeVersion: string }
  >();
  const requests: StripeRequestRecord[] = [];
  const idempotencyKeys: string[] = [];
  const events: StripeEventRecord[] = [];
  const deliveries: StripeWebhookDelivery[] = [];
  let deliveryTail: Promise<unknown> = Promise.resolve();
  let invoiceSequence = 0;
  /** The request being handled, so events it causes carry `request.id` and `request.idempotency_key`. */
  let currentRequest: { id: string | null; idempotency_key: string | null } = { id: null, idempotency_key: null };

  const now = () => Math.floor(Date.now() / 1000) + clockOffset;

  function assertLoopback(target: string | undefined): void {
    if (target === undefined) return;
    const host = new URL(target).hostname;
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) {
      throw new Error(`The local Stripe server only sends webhooks to loopback addresses, not ${host}`);
    }
  }

  function put<T extends StripeObject>(value: T): T {
    store.set(value.id, value);
    return value;
  }

  function find<T extends StripeObject>(type: string, id: string): T | undefined {
    const value = store.get(id);
    return value && value.object === type ? (value as T) : undefined;
  }

  /** The object an id names, or Stripe's `resource_missing` (404 for the URL's id, 400 for a parameter). */
  function load<T extends StripeObject>(type: string, id: string, param = 'id'): T {
    const value = find<T>(type, id);
    if (!value || (type === 'customer' && value.deleted && param !== 'id')) {
      throw noSuch(type, id, param, param === 'id' ? 404 : 400);
    }
    return value;
  }

  function all<T extends StripeObject>(type: string): T[] {
    return [...store.values()].filter((value): value is T => value.object === type);
  }

  // -------------------------------------------------------------------------------------------
  // Events and webhooks

  function emit(type: string, object: StripeObject, previous?: Record<string, unknown>, created = now()) {
    const event: StripeEventRecord = {
      id: randomId('evt_'),
      object: 'event',
      api_version: apiVersion,
      created,
      data: { object: clone(object), ...(previous ? { previous_attributes: clone(previous) } : {}) },
      livemode: false,
      pending_webhooks: webhookUrl ? 1 : 0,
      request: { ...currentRequest },
      type,
    };
    events.push(event);
    schedule(event);
    return event;
  }

  function schedule(event: StripeEventRecord): Promise<StripeWebhookDelivery | undefined> {
    const delivery = deliveryTail.then(() => deliver(event));
    deliveryTail = delivery;
    return delivery;
  }

  async function deliver(event: StripeEventRecord): Promise<StripeWebhookDelivery | undefined> {
    const target = webhookUrl;
    if (!target) return undefined;
    if (!enabledEvents.includes('*') && !enabledEvents.includes(event.type)) return undefined;
    // Stripe sends the event pretty-printed; the signature covers these exact bytes.
    const payload = JSON.stringify(event, null, 2);
    // Signed with real time, not the advanced clock: receivers check the tolerance against their own clock.
    const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: webhookSecret });
    const record: StripeWebhookDelivery = {
      eventId: event.id,
      type: event.type,
      status: undefined,
      payload,
      signature,
    };
    try {
      const response = await fetch(target, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': signature,
        },
        body: payload,
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
      record.status = response.status;
    } catch (error) {
      record.error = error instanceof Error ? error.message : String(error);
    }
    deliveries.push(record);
    return record;
  }

  async function settled(): Promise<void> {
    let tail: Promise<unknown>;
    do {
      tail = deliveryTail;
      await tail;
    } while (tail !== deliveryTail);
  }

  /** Top-level fields of `before` that differ in `after`, as Stripe's `previous_attributes`. */
  function changes(before: StripeObject, after: StripeObject): Record<string, unknown> {
    const previous: Record<string, unknown> = {};
    for (const key of Object.keys(after)) {
      if (canonical(before[key]) !== canonical(after[key])) previous[key] = before[key] ?? null;
    }
    return previous;
  }

  // -------------------------------------------------------------------------------------------
  // Rendering: expansion of ids into objects, and includable fields

  function render(value: StripeObject, expand: string[]): StripeObject {
    let result: unknown = clone(value);
    for (const path of expand) result = expandPath(result, path.split('.'));
    return result as StripeObject;
  }

  function expandPath(value: unknown, segments: string[]): unknown {
    const [head, ...rest] = segments;
    if (head === undefined || !value || typeof value !== 'object') return value;
    const record = value as Record<string, unknown>;
    if (record.object === 'list' && head === 'data' && Array.isArray(record.data)) {
      return { ...record, data: record.data.map((item) => expandPath(item, rest)) };
    }
    let field = record[head];
    if (head === 'line_items' && record.object === 'checkout.session') {
      field = lineItemsList(String(record.id));
    } else if (typeof field === 'string' && store.has(field)) {
      field = clone(store.get(field));
    }
    return { ...record, [head]: expandPath(field, rest) };
  }

  function lineItemsList(sessionId: string): ListObject<StripeObject> {
    const data = (sessionLines.get(sessionId) ?? []).map((line) => {
      const amount = lineAmount(line.price, line.quantity);
      const product = find<StripeObject>('product', line.price.product);
      return {
        id: line.id,
        object: 'item',
        amount_discount: 0,
        amount_subtotal: amount,
        amount_tax: 0,
        amount_total: amount,
        currency: line.price.currency,
        description: (product?.name as string | undefined) ?? null,
        price: clone(line.price),
        quantity: line.quantity,
      };
    });
    return { object: 'list', data, has_more: false, url: `/v1/checkout/sessions/${sessionId}/line_items` };
  }

  function list(items: StripeObject[], query: StripeParams, url: string, expand: string[]): ListObject<StripeObject> {
    const limit = int(query, 'limit') ?? 10;
    if (limit < 1 || limit > 100) throw invalid('Invalid limit: must be between 1 and 100', { param: 'limit' });
    // Newest first, like Stripe; objects created in the same second keep their creation order reversed.
    let ordered = [...items].reverse().sort((a, b) => Number(b.created ?? 0) - Number(a.created ?? 0));
    const after = str(query, 'starting_after');
    const before = str(query, 'ending_before');
    if (after) {
      const index = ordered.findIndex((item) => item.id === after);
      if (index < 0) throw noSuch('object', after, 'starting_after');
      ordered = ordered.slice(index + 1);
    } else if (before) {
      const index = ordered.findIndex((item) => item.id === before);
      if (index < 0) throw noSuch('object', before, 'ending_before');
      ordered = ordered.slice(Math.max(0, index - limit), index);
      return { object: 'list', data: ordered.map((item) => render(item, expand)), has_more: index - limit > 0, url };
    }
    return {
      object: 'list',
      data: ordered.slice(0, limit).map((item) => render(item, expand)),
      has_more: ordered.length > limit,
      url,
    };
  }

  /** `expand[]=data.customer` on a list means `customer` on each item. */
  function listExpand(expand: string[]): string[] {
    return expand.filter((path) => path.startsWith('data.')).map((path) => path.slice('data.'.length));
  }

  // -------------------------------------------------------------------------------------------
  // Money

  /** A price times a quantity, in minor units; `unit_amount_decimal` is rounded half up once per line. */
  function lineAmount(price: Price, quantity: number): number {
    return new Decimal(price.unit_amount_decimal).times(quantity).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toNumber();
  }

  // -------------------------------------------------------------------------------------------
  // Customers

  function createCustomer(params: StripeParams): Customer {
    allow(params, 'email name description phone metadata address preferred_locales invoice_settings');
    const created = now();
    const customer: Customer = {
      id: randomId('cus_', 14),
      object: 'customer',
      address: obj(params, 'address') ?? null,
      balance: 0,
      created,
      currency: null,
      default_source: null,
      delinquent: false,
      description: str(params, 'description') ?? null,
      discount: null,
      email: str(params, 'email') || null,
      invoice_prefix: randomId('', 8).toUpperCase(),
      invoice_settings: {
        custom_fields: null,
        default_payment_method: str(obj(params, 'invoice_settings') ?? {}, 'default_payment_method') ?? null,
        footer: null,
        rendering_options: null,
      },
      livemode: false,
      metadata: metadataFrom(params),
      name: str(params, 'name') || null,
      next_invoice_sequence: 1,
      phone: str(params, 'phone') || null,
      preferred_locales: arr(params, 'preferred_locales'),
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    };
    put(customer);
    emit('customer.created', customer);
    return customer;
  }

  function updateCustomer(customer: Customer, params: StripeParams): Customer {
    allow(params, 'email name description phone metadata address preferred_locales invoice_settings');
    if (customer.deleted) throw invalid('You cannot update a deleted customer.', { param: 'id' });
    const before = clone(customer);
    for (const field of ['email', 'name', 'description', 'phone'] as const) {
      const value = str(params, field);
      if (value !== undefined) customer[field] = value || null;
    }
    if (params.address !== undefined) customer.address = obj(params, 'address') ?? null;
    const settings = obj(params, 'invoice_settings');
    if (settings) {
      allow(settings, 'default_payment_method', 'invoice_settings');
      (customer.invoice_settings as Record<string, unknown>).default_payment_method =
        str(settings, 'default_payment_method') || null;
    }
    customer.metadata = metadataFrom(params, customer.metadata);
    const previous = changes(before, customer);
    if (Object.keys(previous).length > 0) emit('customer.updated', customer, previous);
    return customer;
  }

  // -------------------------------------------------------------------------------------------
  // Products and prices

  function createProduct(params: StripeParams, path = ''): StripeObject {
    allow(params, 'name id active description metadata unit_label statement_descriptor tax_code', path);
    const name = requiredStr(params, 'name', path ? `${path}[name]` : 'name');
    const id = str(params, 'id') ?? randomId('prod_', 14);
    if (store.has(id)) throw invalid(`Product already exists.`, { code: 'resource_already_exists', param: 'id' });
    const product: StripeObject = {
      id,
      object: 'product',
      active: bool(params, 'active') ?? true,
      created: now(),
      default_price: null,
      description: str(params, 'description') ?? null,
      images: [],
      livemode: false,
      marketing_features: [],
      metadata: metadataFrom(params),
      name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: str(params, 'statement_descriptor') ?? null,
      tax_code: str(params, 'tax_code') ?? null,
      type: 'service',
      unit_label: str(params, 'unit_label') ?? null,
      updated: now(),
      url: null,
    };
    put(product);
    emit('product.created', product);
    return product;
  }

  /** A price from `prices.create` params, or from inline `price_data` (path names the param for errors). */
  function createPrice(params: StripeParams, path = '', inline = false): Price {
    const at = (key: string) => (path ? `${path}[${key}]` : key);
    allow(
      params,
      inline
        ? 'currency product product_data unit_amount unit_amount_decimal recurring tax_behavior'
        : 'currency product product_data unit_amount unit_amount_decimal recurring nickname lookup_key metadata active tax_behavior billing_scheme',
      path,
    );
    const currency = requiredStr(params, 'currency', at('currency')).toLowerCase();
    let productId = str(params, 'product', at('product'));
    const productData = obj(params, 'product_data', at('product_data'));
    if (productId) load('product', productId, at('product'));
    else if (productData) productId = createProduct(productData, at('product_data')).id;
    else throw missingParam(at('product'));
    const unitAmount = int(params, 'unit_amount', at('unit_amount'));
    const unitAmountDecimal = str(params, 'unit_amount_decimal', at('unit_amount_decimal'));
    if (unitAmount === undefined && unitAmountDecimal === undefined) throw missingParam(at('unit_amount'));
    if (unitAmount !== undefined && unitAmount < 0) {
      throw invalid('This value must be greater than or equal to 0.', { param: at('unit_amount') });
    }
    if (unitAmountDecimal !== undefined && !/^\d+(\.\d{1,12})?$/.test(unitAmountDecimal)) {
      throw invalid(`Invalid decimal: ${unitAmountDecimal}`, { param: at('unit_amount_decimal') });
    }
    const recurringParams = obj(params, 'recurring', at('recurring'));
    let recurring: Recurring | null = null;
    if (recurringParams) {
      allow(recurringParams, 'interval interval_count usage_type', at('recurring'));
      const interval = oneOf(
        recurringParams,
        'interval',
        ['day', 'week', 'month', 'year'],
        `${at('recurring')}[interval]`,
      );
      if (!interval) throw missingParam(`${at('recurring')}[interval]`);
      recurring = {
        interval,
        interval_count: int(recurringParams, 'interval_count') ?? 1,
        meter: null,
        trial_period_days: null,
        usage_type: 'licensed',
      };
    }
    const price: Price = {
      id: randomId('price_'),
      object: 'price',
      active: inline ? false : (bool(params, 'active') ?? true),
      billing_scheme: 'per_unit',
      created: now(),
      currency,
      custom_unit_amount: null,
      livemode: false,
      lookup_key: str(params, 'lookup_key') ?? null,
      metadata: inline ? {} : metadataFrom(params),
      nickname: str(params, 'nickname') ?? null,
      product: productId,
      recurring,
      tax_behavior: str(params, 'tax_behavior') ?? 'unspecified',
      tiers_mode: null,
      transform_quantity: null,
      type: recurring ? 'recurring' : 'one_time',
      unit_amount: unitAmount ?? (Number.isInteger(Number(unitAmountDecimal)) ? Number(unitAmountDecimal) : null),
      unit_amount_decimal: unitAmountDecimal ?? String(unitAmount),
    };
    put(price);
    emit('price.created', price);
    return price;
  }

  /** `price` (an id) or `price_data` of a line (checkout, subscription item, invoice item). */
  function priceOfLine(line: StripeParams, path: string): Price | undefined {
    const priceId = str(line, 'price', `${path}[price]`);
    if (priceId) {
      const price = load<Price>('price', priceId, `${path}[price]`);
      return price;
    }
    const data = obj(line, 'price_data', `${path}[price_data]`);
    return data ? createPrice(data, `${path}[price_data]`, true) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Checkout sessions

  const checkoutIntents = new Map<
    string,
    { subscription: SubscriptionDefaults; paymentMetadata: Metadata; paymentDescription: string | null }
  >();

  function createCheckoutSession(params: StripeParams): CheckoutSession {
    allow(
      params,
      'mode line_items customer customer_email customer_creation client_reference_id metadata success_url cancel_url subscription_data payment_intent_data allow_promotion_codes billing_address_collection payment_method_types expires_at locale currency',
    );
    const mode = oneOf(params, 'mode', ['payment', 'subscription', 'setup'] as const);
    if (!mode) throw missingParam('mode');
    if (mode === 'setup') throw invalid('The local Stripe server does not implement setup mode.', { param: 'mode' });
    const customerId = str(params, 'customer');
    const customer = customerId ? load<Customer>('customer', customerId, 'customer') : undefined;
    const customerEmail = str(params, 'customer_email');
    if (customer && customerEmail) {
      throw invalid('You may only specify one of these parameters: customer, customer_email.', {
        param: 'customer_email',
      });
    }
    const lineParams = arrOfObjects(params, 'line_items');
    if (lineParams.length === 0) throw missingParam('line_items');
    const lines: SessionLine[] = lineParams.map((line, index) => {
      const path = `line_items[${index}]`;
      allow(line, 'price price_data quantity', path);
      const price = priceOfLine(line, path);
      if (!price) throw missingParam(`${path}[price]`);
      const quantity = int(line, 'quantity', `${path}[quantity]`);
      if (quantity === undefined) throw missingParam(`${path}[quantity]`);
      if (quantity < 1) throw invalid('This value must be greater than or equal to 1.', { param: `${path}[quantity]` });
      return { id: randomId('li_'), price, quantity };
    });
    const currencies = new Set(lines.map((line) => line.price.currency));
    if (currencies.size > 1) throw invalid('All line items must have the same currency.', { param: 'line_items' });
    if (mode === 'subscription' && !lines.some((line) => line.price.recurring)) {
      throw invalid('You must provide at least one recurring price in `subscription` mode when using prices.', {
        param: 'line_items',
      });
    }
    if (mode === 'payment' && lines.some((line) => line.price.recurring)) {
      throw invalid(
        'You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.',
        { param: 'line_items' },
      );
    }
    const subscriptionData = obj(params, 'subscription_data');
    if (subscriptionData) {
      if (mode !== 'subscription') {
        throw invalid('You can not pass `subscription_data` in `payment` mode.', { param: 'subscription_data' });
      }
      allow(subscriptionData, 'trial_period_days metadata description', 'subscription_data');
      const trial = int(subscriptionData, 'trial_period_days', 'subscription_data[trial_period_days]');
      if (trial !== undefined && trial < 1) {
        throw invalid('This value must be greater than or equal to 1.', {
          param: 'subscription_data[trial_period_days]',
        });
      }
    }
    const paymentIntentData = obj(params, 'payment_intent_data');
    if (paymentIntentData) {
      if (mode !== 'payment') {
        throw invalid('You can not pass `payment_intent_data` in `subscription` mode.', {
          param: 'payment_intent_data',
        });
      }
      allow(paymentIntentData, 'metadata description receipt_email', 'payment_intent_data');
    }
    const amount = lines.reduce((sum, line) => sum + lineAmount(line.price, line.quantity), 0);
    const currency = [...currencies][0] ?? 'usd';
    const minimum = minimumCharge[currency];
    if (mode === 'payment' && minimum !== undefined && amount < minimum) {
      throw invalid(`The Checkout Session's total amount due must add up to at least ${minimum} ${currency}.`, {
        code: 'amount_too_small',
        param: 'line_items',
      });
    }
    const id = randomId('cs_test_', 58);
    const created = now();
    const session: CheckoutSession = {
      id,
      object: 'checkout.session',
      allow_promotion_codes: bool(params, 'allow_promotion_codes') ?? null,
      amount_subtotal: amount,
      amount_total: amount,
      billing_address_collection: str(params, 'billing_address_collection') ?? null,
      cancel_url: str(params, 'cancel_url') ?? null,
      client_reference_id: str(params, 'client_reference_id') ?? null,
      created,
      currency,
      customer: customer?.id ?? null,
      customer_creation: customer
        ? null
        : (str(params, 'customer_creation') ?? (mode === 'payment' ? 'if_required' : 'always')),
      customer_details: null,
      customer_email: customerEmail ?? null,
      expires_at: int(params, 'expires_at') ?? created + 86_400,
      invoice: null,
      livemode: false,
      locale: str(params, 'locale') ?? null,
      metadata: metadataFrom(params),
      mode,
      payment_intent: null,
      payment_method_types:
        arr(params, 'payment_method_types').length > 0 ? arr(params, 'payment_method_types') : ['card'],
      payment_status: 'unpaid',
      status: 'open',
      subscription: null,
      success_url: str(params, 'success_url') ?? null,
      ui_mode: 'hosted',
      url: `${baseUrl}/checkout/${id}`,
    };
    sessionLines.set(id, lines);
    // Kept aside for completion: what the session will create.
    checkoutIntents.set(id, {
      subscription: {
        trialPeriodDays: subscriptionData ? int(subscriptionData, 'trial_period_days') : undefined,
        metadata: subscriptionData ? metadataFrom(subscriptionData, {}, 'subscription_data[metadata]') : {},
        description: subscriptionData ? (str(subscriptionData, 'description') ?? null) : null,
      },
      paymentMetadata: paymentIntentData ? metadataFrom(paymentIntentData, {}, 'payment_intent_data[metadata]') : {},
      paymentDescription: paymentIntentData ? (str(paymentIntentData, 'description') ?? null) : null,
    });
    return put(session);
  }

  function completeCheckoutNow(sessionId: string): CheckoutSession {
    const session = load<CheckoutSession>('checkout.session', sessionId);
    if (session.status !== 'open') throw new Error(`Checkout session ${sessionId} is ${session.status}, not open`);
    const lines = sessionLines.get(sessionId) ?? [];
    const intent = checkoutIntents.get(sessionId);
    let customer = session.customer ? load<Customer>('customer', session.customer) : undefined;
    if (!customer && (session.mode === 'subscription' || session.customer_creation === 'always')) {
      customer = createCustomer({ email: session.customer_email ?? 'customer@example.com' });
    }
    const email = customer?.email ?? session.customer_email ?? 'customer@example.com';
    session.customer = customer?.id ?? null;
    session.customer_details = {
      address: null,
      email,
      name: customer?.name ?? null,
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    };
    session.status = 'complete';
    if (session.mode === 'subscription' && customer) {
      const { subscription, invoice } = createSubscriptionRecord(
        customer,
        lines.map((line) => ({ price: line.price, quantity: line.quantity, metadata: {} })),
        intent?.subscription ?? { metadata: {} },
        {
          collection: 'charge_automatically',
          paymentBehavior: 'allow_incomplete',
          billingReason: 'subscription_create',
        },
      );
      session.subscription = subscription.id;
      session.invoice = invoice.id;
      session.payment_status = invoice.amount_due === 0 ? 'no_payment_required' : 'paid';
    } else {
      const { intent: paymentIntent } = chargeNow({
        amount: session.amount_total,
        currency: session.currency,
        customer: customer?.id ?? null,
        description: intent?.paymentDescription ?? null,
        metadata: intent?.paymentMetadata ?? {},
        paymentMethod: 'pm_card_visa',
      });
      session.payment_intent = paymentIntent.id;
      session.payment_status = 'paid';
    }
    emit('checkout.session.completed', session);
    return session;
  }

  // -------------------------------------------------------------------------------------------
  // Payment intents and charges

  /**
   * Creates a payment intent confirmed with `paymentMethod`, and its charge. A declined test card
   * leaves the intent in `requires_payment_method` with `last_payment_error`, like Stripe.
   */
  function chargeNow(input: {
    amount: number;
    currency: string;
    customer: string | null;
    description: string | null;
    metadata: Metadata;
    paymentMethod: string;
  }): { intent: PaymentIntent; charge: Charge; declined: boolean } {
    const created = now();
    const declined = input.paymentMethod === declinedPaymentMethod;
    const paymentMethod = input.paymentMethod.startsWith('pm_card_') ? `pm_${randomId('', 24)}` : input.paymentMethod;
    const intent: PaymentIntent = {
      id: randomId('pi_'),
      object: 'payment_intent',
      amount: input.amount,
      amount_capturable: 0,
      amount_received: 0,
      capture_method: 'automatic_async',
      client_secret: '',
      confirmation_method: 'automatic',
      created,
      currency: input.currency,
      customer: input.customer,
      description: input.description,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata: input.metadata,
      payment_method: paymentMethod,
      payment_method_types: ['card'],
      receipt_email: null,
      setup_future_usage: null,
      status: 'requires_payment_method',
    };
    intent.client_secret = `${intent.id}_secret_${randomId('', 25)}`;
    const charge: Charge = {
      id: randomId('ch_'),
      object: 'charge',
      amount: input.amount,
      amount_captured: declined ? 0 : input.amount,
      amount_refunded: 0,
      balance_transaction: declined ? null : randomId('txn_'),
      billing_details: { address: null, email: null, name: null, phone: null },
      captured: !declined,
      created,
      currency: input.currency,
      customer: input.customer,
      description: input.description,
      disputed: false,
      failure_code: declined ? 'card_declined' : null,
      failure_message: declined ? 'Your card was declined.' : null,
      livemode: false,
      metadata: input.metadata,
      outcome: declined
        ? {
            network_status: 'declined_by_network',
            reason: 'generic_decline',
            risk_level: 'normal',
            seller_message: 'The bank did not return any further details with this decline.',
            type: 'issuer_declined',
          }
        : {
            network_status: 'approved_by_network',
            reason: null,
            risk_level: 'normal',
            seller_message: 'Payment complete.',
            type: 'authorized',
          },
      paid: !declined,
      payment_intent: intent.id,
      payment_method: paymentMethod,
      receipt_url: `${baseUrl}/receipts/${intent.id}`,
      refunded: false,
      status: declined ? 'failed' : 'succeeded',
    };
    intent.latest_charge = charge.id;
    put(charge);
    put(intent);
    emit('payment_intent.created', intent);
    if (declined) {
      intent.last_payment_error = {
        type: 'card_error',
        charge: charge.id,
        code: 'card_declined',
        decline_code: 'generic_decline',
        doc_url: 'https://stripe.com/docs/error-codes/card-declined',
        message: 'Your card was declined.',
      };
      emit('charge.failed', charge);
      emit('payment_intent.payment_failed', intent);
    } else {
      intent.status = 'succeeded';
      intent.amount_received = input.amount;
      emit('charge.succeeded', charge);
      emit('payment_intent.succeeded', intent);
    }
    return { intent, charge, declined };
  }

  function refund(charge: Charge, amount: number | undefined, reason: string | null, metadata: Metadata): StripeObject {
    if (charge.status !== 'succeeded') throw invalid(`Charge ${charge.id} has not succeeded and cannot be refunded.`);
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) {
      throw invalid(`Charge ${charge.id} has already been refunded.`, { code: 'charge_already_refunded' });
    }
    const value = amount ?? remaining;
    if (value < 1) throw invalid('Invalid positive integer', { param: 'amount' });
    if (value > remaining) {
      throw invalid(
        `Refund amount (${value} ${charge.currency}) is greater than unrefunded amount on charge (${remaining} ${charge.currency})`,
        { code: 'amount_too_large', param: 'amount' },
      );
    }
    const created = now();
    const record: StripeObject = {
      id: randomId('re_'),
      object: 'refund',
      amount: value,
      balance_transaction: randomId('txn_'),
      charge: charge.id,
      created,
      currency: charge.currency,
      destination_details: { type: 'card', card: { type: 'refund' } },
      metadata,
      payment_intent: charge.payment_intent,
      reason,
      receipt_number: null,
      status: 'succeeded',
    };
    put(record);
    const before = clone(charge);
    charge.amount_refunded += value;
    charge.refunded = charge.amount_refunded === charge.amount;
    emit('refund.created', record);
    emit('charge.refunded', charge, changes(before, charge));
    return record;
  }

  // -------------------------------------------------------------------------------------------
  // Invoices and invoice items

  function createInvoiceRecord(input: {
    customer: Customer;
    currency: string;
    subscription?: Subscription;
    billingReason: string;
    collection: string;
    description?: string | null;
    metadata?: Metadata;
    autoAdvance?: boolean;
    daysUntilDue?: number | null;
    periodStart?: number;
    periodEnd?: number;
  }): Invoice {
    const created = now();
    const invoice: Invoice = {
      id: randomId('in_'),
      object: 'invoice',
      account_country: 'US',
      account_name: accountName,
      amount_due: 0,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: 0,
      amount_shipping: 0,
      attempt_count: 0,
      attempted: false,
      auto_advance: input.autoAdvance ?? input.billingReason !== 'manual',
      automatic_tax: { enabled: false, liability: null, status: null },
      billing_reason: input.billingReason,
      collection_method: input.collection,
      created,
      currency: input.currency,
      customer: input.customer.id,
      customer_email: input.customer.email,
      customer_name: input.customer.name,
      default_payment_method: null,
      description: input.description ?? null,
      discounts: [],
      due_date: input.collection === 'send_invoice' ? created + 86_400 * (input.daysUntilDue ?? 30) : null,
      effective_at: null,
      ending_balance: null,
      footer: null,
      hosted_invoice_url: null,
      invoice_pdf: null,
      last_finalization_error: null,
      lines: { object: 'list', data: [], has_more: false, total_count: 0, url: '' },
      livemode: false,
      metadata: input.metadata ?? {},
      next_payment_attempt: null,
      number: null,
      parent: input.subscription
        ? {
            type: 'subscription_details',
            subscription_details: { subscription: input.subscription.id, metadata: clone(input.subscription.metadata) },
          }
        : null,
      payments: { object: 'list', data: [], has_more: false, total_count: 0, url: '' },
      period_end: input.periodEnd ?? created,
      period_start: input.periodStart ?? created,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      receipt_number: null,
      starting_balance: 0,
      statement_descriptor: null,
      status: 'draft',
      status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
      subtotal: 0,
      subtotal_excluding_tax: 0,
      test_clock: null,
      total: 0,
      total_discount_amounts: [],
      total_excluding_tax: 0,
      total_taxes: [],
      webhooks_delivered_at: created,
    };
    invoice.lines.url = `/v1/invoices/${invoice.id}/lines`;
    invoice.payments.url = `/v1/invoice_payments?invoice=${invoice.id}`;
    put(invoice);
    return invoice;
  }

  /** Keeps an invoice's lines and totals equal to its subscription lines plus its invoice items. */
  function recompute(invoice: Invoice): void {
    const itemLines = all<InvoiceItem>('invoiceitem')
      .filter((item) => item.invoice === invoice.id)
      .map((item): InvoiceLine => {
        let lineId = invoiceLineIds.get(item.id);
        if (!lineId) {
          lineId = randomId('il_');
          invoiceLineIds.set(item.id, lineId);
        }
        const subscription = item.parent?.subscription_details.subscription ?? null;
        return {
          id: lineId,
          object: 'line_item',
          amount: item.amount,
          currency: item.currency,
          description: item.description,
          discount_amounts: [],
          discountable: true,
          discounts: [],
          invoice: invoice.id,
          livemode: false,
          metadata: clone(item.metadata),
          parent: {
            type: 'invoice_item_details',
            invoice_item_details: {
              invoice_item: item.id,
              proration: item.proration,
              proration_details: { credited_items: null },
              subscription,
            },
            subscription_item_details: null,
          },
          period: clone(item.period),
          pretax_credit_amounts: [],
          pricing: clone(item.pricing),
          quantity: item.quantity,
          subscription,
          subtotal: item.amount,
          taxes: [],
        };
      });
    const lines = [...(subscriptionLines.get(invoice.id) ?? []), ...itemLines];
    invoice.lines.data = lines;
    invoice.lines.total_count = lines.length;
    const subtotal = lines.reduce((sum, line) => sum + line.amount, 0);
    invoice.subtotal = subtotal;
    invoice.subtotal_excluding_tax = subtotal;
    invoice.total = subtotal;
    invoice.total_excluding_tax = subtotal;
    // A negative total is owed to the customer (their balance), never collected.
    invoice.amount_due = Math.max(0, subtotal);
    invoice.amount_remaining = invoice.amount_due - invoice.amount_paid;
  }

  /** An invoice item from `invoiceItems.create` params; `proration` marks one this server prorates itself. */
  function createInvoiceItem(params: StripeParams, proration?: { price: Price; quantity: number }): InvoiceItem {
    allow(
      params,
      'customer amount currency description metadata invoice subscription price_data pricing quantity period discountable unit_amount_decimal',
    );
    const customer = load<Customer>('customer', requiredStr(params, 'customer'), 'customer');
    const invoiceId = str(params, 'invoice');
    const invoice = invoiceId ? load<Invoice>('invoice', invoiceId, 'invoice') : undefined;
    if (invoice && invoice.status !== 'draft') {
      throw invalid(`You can only add invoice items to draft invoices; ${invoice.id} is ${invoice.status}.`, {
        code: 'invoice_not_editable',
        param: 'invoice',
      });
    }
    if (invoice && invoice.customer !== customer.id) {
      throw invalid(`Invoice ${invoice.id} belongs to another customer.`, { param: 'invoice' });
    }
    const subscriptionId = str(params, 'subscription');
    const subscription = subscriptionId
      ? load<Subscription>('subscription', subscriptionId, 'subscription')
      : undefined;
    const pricingParams = obj(params, 'pricing');
    if (pricingParams) allow(pricingParams, 'price', 'pricing');
    let price: Price | undefined = proration?.price;
    const pricingPrice = pricingParams ? str(pricingParams, 'price', 'pricing[price]') : undefined;
    if (pricingPrice) price = load<Price>('price', pricingPrice, 'pricing[price]');
    const priceData = obj(params, 'price_data');
    if (priceData) price = createPrice(priceData, 'price_data', true);
    const quantity = proration?.quantity ?? int(params, 'quantity') ?? 1;
    let amount = int(params, 'amount');
    let currency = str(params, 'currency')?.toLowerCase();
    if (price && !proration) {
      if (amount !== undefined) {
        throw invalid('You may only specify one of these parameters: amount, price_data, pricing.', {
          param: 'amount',
        });
      }
      amount = lineAmount(price, quantity);
      currency = price.currency;
    }
    if (amount === undefined) throw missingParam('amount');
    if (!currency) throw missingParam('currency');
    const targetCurrency = invoice?.currency ?? subscription?.currency;
    if (targetCurrency && targetCurrency !== currency) {
      throw invalid(
        `The currency of this invoice item (${currency}) does not match the currency of the invoice or subscription (${targetCurrency}).`,
        { param: 'currency' },
      );
    }
    const periodParams = obj(params, 'period');
    const created = now();
    const item: InvoiceItem = {
      id: randomId('ii_'),
      object: 'invoiceitem',
      amount,
      currency: currency ?? 'usd',
      customer: customer.id,
      date: created,
      description: str(params, 'description') ?? null,
      discountable: bool(params, 'discountable') ?? amount >= 0,
      discounts: [],
      invoice: invoice?.id ?? null,
      livemode: false,
      metadata: metadataFrom(params),
      net_amount: amount,
      parent: subscription
        ? { type: 'subscription_details', subscription_details: { subscription: subscription.id } }
        : null,
      period: {
        start: (periodParams && int(periodParams, 'start', 'period[start]')) ?? created,
        end: (periodParams && int(periodParams, 'end', 'period[end]')) ?? created,
      },
      pricing: price
        ? {
            type: 'price_details',
            price_details: { price: price.id, product: price.product },
            unit_amount_decimal: price.unit_amount_decimal,
          }
        : null,
      proration: proration !== undefined,
      quantity,
      quantity_decimal: String(quantity),
      tax_rates: [],
      test_clock: null,
    };
    put(item);
    emit('invoiceitem.created', item);
    if (invoice) {
      const before = clone(invoice);
      recompute(invoice);
      emit('invoice.updated', invoice, changes(before, invoice));
    }
    return item;
  }

  /** Pending items (no invoice yet) of the customer that belong on an invoice for `subscription` (or none). */
  function attachPending(invoice: Invoice, subscriptionId: string | null): void {
    for (const item of all<InvoiceItem>('invoiceitem')) {
      const owner = item.parent?.subscription_details.subscription ?? null;
      if (item.customer === invoice.customer && item.invoice === null && (owner === null || owner === subscriptionId)) {
        if (item.currency === invoice.currency) item.invoice = invoice.id;
      }
    }
  }

  function finalize(invoice: Invoice): void {
    if (invoice.status !== 'draft') {
      throw invalid(`This invoice is already finalized, you can't re-finalize a non-draft invoice.`, {
        code: 'invoice_not_editable',
      });
    }
    const customer = find<Customer>('customer', invoice.customer);
    invoiceSequence += 1;
    const at = now();
    invoice.status = 'open';
    invoice.number = `${customer?.invoice_prefix ?? 'TEST'}-${String(invoiceSequence).padStart(4, '0')}`;
    invoice.status_transitions.finalized_at = at;
    invoice.effective_at = at;
    invoice.hosted_invoice_url = `${baseUrl}/invoices/${invoice.id}`;
    invoice.invoice_pdf = `${baseUrl}/invoices/${invoice.id}/pdf`;
    invoice.ending_balance = 0;
    invoice.next_payment_attempt =
      invoice.collection_method === 'charge_automatically' && invoice.amount_due > 0 ? at + 3600 : null;
    emit('invoice.finalized', invoice);
    if (invoice.amount_due === 0) markPaid(invoice, null);
  }

  function markPaid(invoice: Invoice, intent: PaymentIntent | null): void {
    const at = now();
    invoice.status = 'paid';
    invoice.amount_paid = invoice.amount_due;
    invoice.amount_remaining = 0;
    invoice.next_payment_attempt = null;
    invoice.status_transitions.paid_at = at;
    if (intent) {
      invoice.attempted = true;
      invoice.attempt_count += 1;
      const existing = invoice.payments.data.find((payment) => payment.status === 'open');
      if (existing) existing.status = 'canceled';
      invoice.payments.data.push({
        id: randomId('inpay_'),
        object: 'invoice_payment',
        amount_paid: intent.amount,
        amount_requested: intent.amount,
        created: at,
        currency: intent.currency,
        invoice: invoice.id,
        is_default: true,
        livemode: false,
        payment: { type: 'payment_intent', payment_intent: intent.id },
        status: 'paid',
        status_transitions: { canceled_at: null, paid_at: at },
      });
      invoice.payments.total_count = invoice.payments.data.length;
    }
    emit('invoice.paid', invoice);
    emit('invoice.payment_succeeded', invoice);
    const subscription = invoiceSubscription(invoice);
    if (subscription && ['past_due', 'incomplete', 'unpaid'].includes(subscription.status)) {
      const before = clone(subscription);
      subscription.status = subscription.trial_end && subscription.trial_end > at ? 'trialing' : 'active';
      emit('customer.subscription.updated', subscription, changes(before, subscription));
    }
  }

  function invoiceSubscription(invoice: Invoice): Subscription | undefined {
    const id = invoice.parent?.subscription_details.subscription;
    return id ? find<Subscription>('subscription', id) : undefined;
  }

  /** Collects an invoice: finalizes a draft, then charges `paymentMethod` (or records an out-of-band payment). */
  function collect(
    invoice: Invoice,
    paymentMethod: string,
    outOfBand = false,
  ): { invoice: Invoice; declined: boolean } {
    if (invoice.status === 'paid') throw invalid('Invoice is already paid', { code: 'invoice_already_paid' });
    if (invoice.status === 'void')
      throw invalid('This invoice has been voided and cannot be paid.', { code: 'invoice_not_open' });
    if (invoice.status === 'draft') finalize(invoice);
    if (invoice.status !== 'open') return { invoice, declined: false };
    if (outOfBand) {
      markPaid(invoice, null);
      return { invoice, declined: false };
    }
    const { intent, declined } = chargeNow({
      amount: invoice.amount_remaining,
      currency: invoice.currency,
      customer: invoice.customer,
      description: invoice.billing_reason === 'subscription_create' ? 'Subscription creation' : 'Payment for Invoice',
      metadata: {},
      paymentMethod,
    });
    if (!declined) {
      markPaid(invoice, intent);
      return { invoice, declined };
    }
    const at = now();
    invoice.attempted = true;
    invoice.attempt_count += 1;
    invoice.next_payment_attempt = invoice.collection_method === 'charge_automatically' ? at + 3 * 86_400 : null;
    if (!invoice.payments.data.some((payment) => payment.payment.payment_intent === intent.id)) {
      invoice.payments.data.push({
        id: randomId('inpay_'),
        object: 'invoice_payment',
        amount_paid: null,
        amount_requested: intent.amount,
        created: at,
        currency: intent.currency,
        invoice: invoice.id,
        is_default: true,
        livemode: false,
        payment: { type: 'payment_intent', payment_intent: intent.id },
        status: 'open',
        status_transitions: { canceled_at: null, paid_at: null },
      });
      invoice.payments.total_count = invoice.payments.data.length;
    }
    emit('invoice.payment_failed', invoice);
    const subscription = invoiceSubscription(invoice);
    if (subscription && ['active', 'trialing'].includes(subscription.status)) {
      const before = clone(subscription);
      subscription.status = 'past_due';
      emit('customer.subscription.updated', subscription, changes(before, subscription));
    }
    return { invoice, declined };
  }

  // -------------------------------------------------------------------------------------------
  // Subscriptions

  function subscriptionItem(
    subscriptionId: string,
    price: Price,
    quantity: number,
    metadata: Metadata,
    start: number,
  ): SubscriptionItem {
    const recurring = price.recurring ?? { interval: 'month', interval_count: 1 };
    return {
      id: randomId('si_', 14),
      object: 'subscription_item',
      billing_thresholds: null,
      created: now(),
      current_period_end: addInterval(start, recurring.interval, recurring.interval_count),
      current_period_start: start,
      discounts: [],
      metadata,
      plan: {
        id: price.id,
        object: 'plan',
        active: price.active,
        amount: price.unit_amount,
        amount_decimal: price.unit_amount_decimal,
        billing_scheme: 'per_unit',
        created: price.created,
        currency: price.currency,
        interval: recurring.interval,
        interval_count: recurring.interval_count,
        livemode: false,
        metadata: price.metadata,
        meter: null,
        nickname: price.nickname ?? null,
        product: price.product,
        tiers_mode: null,
        transform_usage: null,
        trial_period_days: null,
        usage_type: 'licensed',
      },
      price: clone(price),
      quantity,
      subscription: subscriptionId,
      tax_rates: [],
    };
  }

  function subscriptionLinesFor(invoice: Invoice, subscription: Subscription, trial: boolean): InvoiceLine[] {
    return subscription.items.data.map((item) => {
      const product = find<StripeObject>('product', item.price.product);
      const amount = trial ? 0 : lineAmount(item.price, item.quantity);
      return {
        id: randomId('il_'),
        object: 'line_item',
        amount,
        currency: item.price.currency,
        description: `${trial ? 'Trial period for ' : `${item.quantity} × `}${String(product?.name ?? item.price.product)}`,
        discount_amounts: [],
        discountable: true,
        discounts: [],
        invoice: invoice.id,
        livemode: false,
        metadata: clone(subscription.metadata),
        parent: {
          type: 'subscription_item_details',
          invoice_item_details: null,
          subscription_item_details: {
            invoice_item: null,
            proration: false,
            proration_details: { credited_items: null },
            subscription: subscription.id,
            subscription_item: item.id,
          },
        },
        period: { start: item.current_period_start, end: item.current_period_end },
        pretax_credit_amounts: [],
        pricing: {
          type: 'price_details',
          price_details: { price: item.price.id, product: item.price.product },
          unit_amount_decimal: item.price.unit_amount_decimal,
        },
        quantity: item.quantity,
        subscription: subscription.id,
        subtotal: amount,
        taxes: [],
      };
    });
  }

  /** Invoices the period that starts now (first period or a renewal), attaching pending items, and collects it. */
  function invoicePeriod(subscription: Subscription, billingReason: string, paymentMethod: string | null): Invoice {
    const customer = load<Customer>('customer', subscription.customer);
    const trial = subscription.status === 'trialing';
    const first = subscription.items.data[0];
    const invoice = createInvoiceRecord({
      customer,
      currency: subscription.currency,
      subscription,
      billingReason,
      collection: subscription.collection_method,
      periodStart: first?.current_period_start,
      periodEnd: first?.current_period_start,
    });
    subscriptionLines.set(invoice.id, subscriptionLinesFor(invoice, subscription, trial));
    attachPending(invoice, subscription.id);
    recompute(invoice);
    emit('invoice.created', invoice);
    subscription.latest_invoice = invoice.id;
    finalize(invoice);
    if (invoice.status === 'open' && paymentMethod && subscription.collection_method === 'charge_automatically') {
      collect(invoice, paymentMethod);
    }
    return invoice;
  }

  function createSubscriptionRecord(
    customer: Customer,
    items: { price: Price; quantity: number; metadata: Metadata }[],
    defaults: SubscriptionDefaults,
    how: {
      collection: string;
      paymentBehavior: string;
      billingReason: string;
      paymentMethod?: string;
      cancelAtPeriodEnd?: boolean;
    },
  ): { subscription: Subscription; invoice: Invoice } {
    const start = now();
    const id = randomId('sub_', 14);
    const trialEnd = defaults.trialPeriodDays ? start + defaults.trialPeriodDays * 86_400 : null;
    const subscription: Subscription = {
      id,
      object: 'subscription',
      application: null,
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null },
      billing_cycle_anchor: trialEnd ?? start,
      billing_cycle_anchor_config: null,
      billing_mode: { type: 'flexible' },
      billing_thresholds: null,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: how.collection,
      created: start,
      currency: items[0]?.price.currency ?? 'usd',
      customer: customer.id,
      days_until_due: how.collection === 'send_invoice' ? 30 : null,
      default_payment_method: null,
      default_source: null,
      description: defaults.description ?? null,
      discounts: [],
      ended_at: null,
      invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
      items: {
        object: 'list',
        data: [],
        has_more: false,
        total_count: 0,
        url: `/v1/subscription_items?subscription=${id}`,
      },
      latest_invoice: null,
      livemode: false,
      metadata: defaults.metadata,
      next_pending_invoice_item_invoice: null,
      on_behalf_of: null,
      pause_collection: null,
      payment_settings: {
        payment_method_options: null,
        payment_method_types: null,
        save_default_payment_method: 'off',
      },
      pending_invoice_item_interval: null,
      pending_setup_intent: null,
      pending_update: null,
      schedule: null,
      start_date: start,
      status: trialEnd ? 'trialing' : 'active',
      test_clock: null,
      transfer_data: null,
      trial_end: trialEnd,
      trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
      trial_start: trialEnd ? start : null,
    };
    subscription.items.data = items.map((item) => {
      const si = subscriptionItem(id, item.price, item.quantity, item.metadata, start);
      // A trial is its own first period; the paid period starts when it ends.
      if (trialEnd) si.current_period_end = trialEnd;
      return si;
    });
    subscription.items.total_count = subscription.items.data.length;
    put(subscription);
    if (how.paymentBehavior === 'default_incomplete' && !trialEnd) subscription.status = 'incomplete';
    emit('customer.subscription.created', subscription);
    const invoice = invoicePeriod(
      subscription,
      how.billingReason,
      how.paymentBehavior === 'default_incomplete' ? null : (how.paymentMethod ?? 'pm_card_visa'),
    );
    if (how.cancelAtPeriodEnd) {
      subscription.cancel_at_period_end = true;
      subscription.cancel_at = subscription.items.data[0]?.current_period_end ?? null;
    }
    return { subscription, invoice };
  }

  function subscriptionItemsFromParams(params: StripeParams): { price: Price; quantity: number; metadata: Metadata }[] {
    const items = arrOfObjects(params, 'items');
    if (items.length === 0) throw missingParam('items');
    const result = items.map((item, index) => {
      const path = `items[${index}]`;
      allow(item, 'price price_data quantity metadata', path);
      const price = priceOfLine(item, path);
      if (!price) throw missingParam(`${path}[price]`);
      if (!price.recurring) {
        throw invalid(
          `The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`,
          {
            param: `${path}[price]`,
          },
        );
      }
      const quantity = int(item, 'quantity', `${path}[quantity]`) ?? 1;
      return { price, quantity, metadata: metadataFrom(item, {}, `${path}[metadata]`) };
    });
    const intervals = new Set(
      result.map((item) => `${item.price.recurring?.interval}/${item.price.recurring?.interval_count}`),
    );
    if (intervals.size > 1) {
      throw invalid('Currency and interval fields must match across all plans on this subscription.', {
        param: 'items',
      });
    }
    return result;
  }

  function createSubscription(params: StripeParams): Subscription {
    allow(
      params,
      'customer items metadata trial_period_days collection_method days_until_due payment_behavior default_payment_method description cancel_at_period_end proration_behavior off_session',
    );
    const customer = load<Customer>('customer', requiredStr(params, 'customer'), 'customer');
    const items = subscriptionItemsFromParams(params);
    const { subscription } = createSubscriptionRecord(
      customer,
      items,
      {
        trialPeriodDays: int(params, 'trial_period_days'),
        metadata: metadataFrom(params),
        description: str(params, 'description') ?? null,
      },
      {
        collection:
          oneOf(params, 'collection_method', ['charge_automatically', 'send_invoice']) ?? 'charge_automatically',
        paymentBehavior:
          oneOf(params, 'payment_behavior', [
            'allow_incomplete',
            'default_incomplete',
            'error_if_incomplete',
            'pending_if_incomplete',
          ]) ?? 'allow_incomplete',
        billingReason: 'subscription_create',
        paymentMethod: str(params, 'default_payment_method'),
        cancelAtPeriodEnd: bool(params, 'cancel_at_period_end'),
      },
    );
    return subscription;
  }

  /** Prorations like Stripe's `create_prorations`: credit the unused time of the old items, charge the rest of the period at the new ones. */
  function prorate(subscription: Subscription, before: SubscriptionItem[], after: SubscriptionItem[]): InvoiceItem[] {
    const at = now();
    const created: InvoiceItem[] = [];
    const describe = (item: SubscriptionItem, unused: boolean) => {
      const product = find<StripeObject>('product', item.price.product);
      const date = new Date(at * 1000).toUTCString().slice(5, 16);
      return `${unused ? 'Unused' : 'Remaining'} time on ${item.quantity} × ${String(product?.name ?? item.price.product)} after ${date}`;
    };
    const add = (item: SubscriptionItem, sign: 1 | -1) => {
      const { current_period_start: start, current_period_end: end } = item;
      if (end <= at) return;
      const fraction = new Decimal(end - at).dividedBy(end - start);
      const amount = new Decimal(lineAmount(item.price, item.quantity))
        .times(fraction)
        .toDecimalPlaces(0, Decimal.ROUND_HALF_UP)
        .toNumber();
      const proration = createInvoiceItem(
        {
          customer: subscription.customer,
          amount: String(sign * amount),
          currency: item.price.currency,
          description: describe(item, sign < 0),
          subscription: subscription.id,
          period: { start: String(at), end: String(end) },
        },
        { price: item.price, quantity: item.quantity },
      );
      created.push(proration);
    };
    for (const old of before) {
      const current = after.find((item) => item.id === old.id);
      if (current && current.price.id === old.price.id && current.quantity === old.quantity) continue;
      add(old, -1);
      if (current) add(current, 1);
    }
    for (const added of after.filter((item) => !before.some((old) => old.id === item.id))) add(added, 1);
    return created;
  }

  function updateSubscription(subscription: Subscription, params: StripeParams): Subscription {
    allow(
      params,
      'items metadata proration_behavior cancel_at_period_end cancel_at description default_payment_method payment_behavior cancellation_details collection_method days_until_due off_session billing_cycle_anchor',
    );
    const before = clone(subscription);
    // `billing_cycle_anchor[type]` since API 2026-05 (a plain `now`/`unchanged` before).
    const anchorObject =
      typeof params.billing_cycle_anchor === 'string' ? undefined : obj(params, 'billing_cycle_anchor');
    if (anchorObject) allow(anchorObject, 'type', 'billing_cycle_anchor');
    const anchorParam = anchorObject
      ? oneOf(anchorObject, 'type', ['now', 'unchanged'])
      : oneOf(params, 'billing_cycle_anchor', ['now', 'unchanged']);
    if (subscription.status === 'canceled') {
      const others = Object.keys(params).filter((key) => !['metadata', 'cancellation_details', 'expand'].includes(key));
      if (others.length > 0) {
        throw invalid('A canceled subscription can only update its cancellation_details and metadata.', {
          param: others[0],
        });
      }
    }
    const managedBy = scheduleOf(subscription);
    if (managedBy && (params.cancel_at_period_end !== undefined || params.cancel_at !== undefined)) {
      throw invalid(
        `The subscription is managed by the subscription schedule \`${managedBy}\`, and updating any cancelation behavior directly is not allowed. Please update the schedule instead.`,
        { param: params.cancel_at_period_end !== undefined ? 'cancel_at_period_end' : 'cancel_at' },
      );
    }
    const prorationBehavior =
      oneOf(params, 'proration_behavior', ['create_prorations', 'none', 'always_invoice']) ?? 'create_prorations';
    const itemParams = arrOfObjects(params, 'items');
    if (itemParams.length > 0) {
      const oldItems = clone(subscription.items.data);
      let items = clone(subscription.items.data);
      const periodStart = items[0]?.current_period_start ?? now();
      const periodEnd = items[0]?.current_period_end;
      itemParams.forEach((itemParam, index) => {
        const path = `items[${index}]`;
        allow(itemParam, 'id price price_data quantity metadata deleted clear_usage', path);
        const itemId = str(itemParam, 'id', `${path}[id]`);
        const existing = itemId ? items.find((item) => item.id === itemId) : undefined;
        if (itemId && !existing) throw noSuch('subscription_item', itemId, `${path}[id]`);
        if (existing && bool(itemParam, 'deleted', `${path}[deleted]`)) {
          items = items.filter((item) => item.id !== existing.id);
          return;
        }
        const price = priceOfLine(itemParam, path);
        if (price && !price.recurring) {
          throw invalid(
            'The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.',
            {
              param: `${path}[price]`,
            },
          );
        }
        if (price && price.currency !== subscription.currency) {
          throw invalid('Currency and interval fields must match across all plans on this subscription.', {
            param: `${path}[price]`,
          });
        }
        const quantity = int(itemParam, 'quantity', `${path}[quantity]`);
        if (existing) {
          if (price) {
            const replaced = subscriptionItem(
              subscription.id,
              price,
              existing.quantity,
              existing.metadata,
              periodStart,
            );
            existing.price = replaced.price;
            existing.plan = replaced.plan;
          }
          if (quantity !== undefined) existing.quantity = quantity;
          existing.metadata = metadataFrom(itemParam, existing.metadata, `${path}[metadata]`);
        } else {
          if (!price) throw missingParam(`${path}[price]`);
          const added = subscriptionItem(
            subscription.id,
            price,
            quantity ?? 1,
            metadataFrom(itemParam, {}, `${path}[metadata]`),
            periodStart,
          );
          if (periodEnd !== undefined) added.current_period_end = periodEnd;
          items.push(added);
        }
      });
      if (items.length === 0) throw invalid('A subscription must have at least one active item.', { param: 'items' });
      const interval = (list: SubscriptionItem[]) =>
        `${list[0]?.price.recurring?.interval}/${list[0]?.price.recurring?.interval_count}`;
      const intervalChanged = interval(oldItems) !== interval(items);
      // Stripe resets the billing cycle anchor when the interval changes (docs.stripe.com/billing/
      // subscriptions/billing-cycle#changing): the new period starts now and is invoiced at once, the
      // unused time of the old price credited on that invoice. A trial keeps its end.
      if (
        subscription.status !== 'trialing' &&
        (anchorParam === 'now' || (intervalChanged && anchorParam !== 'unchanged'))
      ) {
        subscription.items.data = items;
        subscription.items.total_count = items.length;
        const at = now();
        if (prorationBehavior !== 'none') prorate(subscription, oldItems, []);
        for (const item of items) {
          const recurring = item.price.recurring ?? { interval: 'month', interval_count: 1 };
          item.current_period_start = at;
          item.current_period_end = addInterval(at, recurring.interval, recurring.interval_count);
        }
        subscription.billing_cycle_anchor = at;
        invoicePeriod(subscription, 'subscription_update', str(params, 'default_payment_method') ?? 'pm_card_visa');
      } else if (intervalChanged && anchorParam === 'unchanged') {
        throw invalid('billing_cycle_anchor cannot be `unchanged` when the interval of the prices changes.', {
          param: 'billing_cycle_anchor',
        });
      } else {
        subscription.items.data = items;
        subscription.items.total_count = items.length;
        if (prorationBehavior !== 'none' && subscription.status !== 'trialing') {
          const prorations = prorate(subscription, oldItems, items);
          if (prorationBehavior === 'always_invoice' && prorations.length > 0) {
            const customer = load<Customer>('customer', subscription.customer);
            const invoice = createInvoiceRecord({
              customer,
              currency: subscription.currency,
              subscription,
              billingReason: 'subscription_update',
              collection: subscription.collection_method,
            });
            for (const proration of prorations) proration.invoice = invoice.id;
            recompute(invoice);
            emit('invoice.created', invoice);
            subscription.latest_invoice = invoice.id;
            finalize(invoice);
            if (invoice.status === 'open' && subscription.collection_method === 'charge_automatically') {
              collect(invoice, str(params, 'default_payment_method') ?? 'pm_card_visa');
            }
          }
        }
      }
    }
    const cancelAtPeriodEnd = bool(params, 'cancel_at_period_end');
    if (cancelAtPeriodEnd !== undefined) {
      subscription.cancel_at_period_end = cancelAtPeriodEnd;
      subscription.cancel_at = cancelAtPeriodEnd ? (subscription.items.data[0]?.current_period_end ?? null) : null;
      subscription.canceled_at = cancelAtPeriodEnd ? now() : null;
      subscription.cancellation_details.reason = cancelAtPeriodEnd ? 'cancellation_requested' : null;
    }
    if (params.cancel_at !== undefined) {
      subscription.cancel_at = int(params, 'cancel_at') ?? null;
      subscription.cancel_at_period_end = false;
    }
    const details = obj(params, 'cancellation_details');
    if (details) {
      allow(details, 'comment feedback', 'cancellation_details');
      if (details.comment !== undefined) subscription.cancellation_details.comment = str(details, 'comment') || null;
      if (details.feedback !== undefined) subscription.cancellation_details.feedback = str(details, 'feedback') || null;
    }
    const description = str(params, 'description');
    if (description !== undefined) subscription.description = description || null;
    const paymentMethod = str(params, 'default_payment_method');
    if (paymentMethod !== undefined) subscription.default_payment_method = paymentMethod || null;
    subscription.metadata = metadataFrom(params, subscription.metadata);
    const previous = changes(before, subscription);
    if (Object.keys(previous).length > 0) emit('customer.subscription.updated', subscription, previous);
    return subscription;
  }

  // -------------------------------------------------------------------------------------------
  // Subscription schedules: phases of a subscription that start at set times
  // (docs.stripe.com/billing/subscriptions/subscription-schedules), e.g. another price or interval
  // from the end of the current period. Created from an existing subscription only.

  interface SchedulePhase {
    start_date: number;
    end_date: number;
    items: { price: string; quantity: number }[];
    metadata: Metadata;
    proration_behavior: string;
  }

  interface SubscriptionSchedule extends StripeObject {
    object: 'subscription_schedule';
    customer: string;
    subscription: string | null;
    status: 'not_started' | 'active' | 'completed' | 'released' | 'canceled';
    end_behavior: 'release' | 'cancel';
    phases: SchedulePhase[];
    current_phase: { start_date: number; end_date: number } | null;
    released_at: number | null;
    released_subscription: string | null;
    metadata: Metadata;
  }

  const scheduleOf = (subscription: Subscription) => subscription.schedule as string | null | undefined;

  function createSchedule(params: StripeParams): SubscriptionSchedule {
    allow(params, 'from_subscription metadata end_behavior customer phases start_date');
    const subscriptionId = str(params, 'from_subscription');
    if (!subscriptionId) {
      throw invalid('The local Stripe server creates subscription schedules from_subscription only.', {
        param: 'from_subscription',
      });
    }
    for (const other of ['customer', 'phases', 'start_date']) {
      if (params[other] !== undefined) {
        throw invalid(`You cannot set \`${other}\` if \`from_subscription\` is set.`, { param: other });
      }
    }
    const subscription = load<Subscription>('subscription', subscriptionId, 'from_subscription');
    if (scheduleOf(subscription)) {
      throw invalid(
        `You cannot migrate a subscription that is already attached to a schedule: \`${scheduleOf(subscription)}\`.`,
        { param: 'from_subscription' },
      );
    }
    if (subscription.status === 'canceled' || subscription.status === 'incomplete_expired') {
      throw invalid('You cannot migrate a subscription that has ended.', { param: 'from_subscription' });
    }
    const first = subscription.items.data[0];
    const start = first?.current_period_start ?? now();
    const end = first?.current_period_end ?? now();
    const schedule = put<SubscriptionSchedule>({
      id: randomId('sub_sched_'),
      object: 'subscription_schedule',
      created: now(),
      livemode: false,
      customer: subscription.customer,
      subscription: subscription.id,
      status: 'active',
      end_behavior: oneOf(params, 'end_behavior', ['release', 'cancel'] as const) ?? 'release',
      phases: [
        {
          start_date: start,
          end_date: end,
          items: subscription.items.data.map((item) => ({ price: item.price.id, quantity: item.quantity })),
          metadata: clone(subscription.metadata),
          proration_behavior: 'create_prorations',
        },
      ],
      current_phase: { start_date: start, end_date: end },
      released_at: null,
      released_subscription: null,
      metadata: metadataFrom(params),
    });
    subscription.schedule = schedule.id;
    emit('subscription_schedule.created', schedule);
    return schedule;
  }

  function updateSchedule(schedule: SubscriptionSchedule, params: StripeParams): SubscriptionSchedule {
    allow(params, 'phases end_behavior metadata proration_behavior');
    if (schedule.status !== 'active' && schedule.status !== 'not_started') {
      throw invalid(`You cannot update a subscription schedule that is ${schedule.status}.`, {});
    }
    const subscription = load<Subscription>('subscription', schedule.subscription ?? '');
    const phaseParams = arrOfObjects(params, 'phases');
    if (phaseParams.length > 0) {
      const phases: SchedulePhase[] = [];
      phaseParams.forEach((phase, index) => {
        const path = `phases[${index}]`;
        allow(phase, 'items start_date end_date duration metadata proration_behavior', path);
        const items = arrOfObjects(phase, 'items');
        if (items.length === 0) throw missingParam(`${path}[items]`);
        const prices = items.map((item, itemIndex) => {
          const itemPath = `${path}[items][${itemIndex}]`;
          allow(item, 'price price_data quantity', itemPath);
          const price = priceOfLine(item, itemPath);
          if (!price) throw missingParam(`${itemPath}[price]`);
          if (!price.recurring) {
            throw invalid(
              'The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.',
              {
                param: `${itemPath}[price]`,
              },
            );
          }
          if (price.currency !== subscription.currency) {
            throw invalid('Currency and interval fields must match across all plans on this subscription.', {
              param: `${itemPath}[price]`,
            });
          }
          return { price, quantity: int(item, 'quantity', `${itemPath}[quantity]`) ?? 1 };
        });
        const previous = phases[index - 1];
        const given = phase.start_date === 'now' ? now() : int(phase, 'start_date', `${path}[start_date]`);
        if (
          index === 0 &&
          schedule.current_phase &&
          given !== undefined &&
          given !== schedule.current_phase.start_date
        ) {
          throw invalid('You can not modify the start date of the current phase.', { param: `${path}[start_date]` });
        }
        const start = previous?.end_date ?? given ?? schedule.current_phase?.start_date ?? now();
        const duration = obj(phase, 'duration', `${path}[duration]`);
        if (duration) allow(duration, 'interval interval_count', `${path}[duration]`);
        const recurring = prices[0]?.price.recurring ?? { interval: 'month', interval_count: 1 };
        const end =
          int(phase, 'end_date', `${path}[end_date]`) ??
          (duration
            ? addInterval(
                start,
                oneOf(duration, 'interval', ['day', 'week', 'month', 'year']) ?? 'month',
                int(duration, 'interval_count') ?? 1,
              )
            : addInterval(start, recurring.interval, recurring.interval_count));
        if (end <= start) {
          throw invalid('The end date of a phase must be after its start date.', { param: `${path}[end_date]` });
        }
        phases.push({
          start_date: start,
          end_date: end,
          items: prices.map(({ price, quantity }) => ({ price: price.id, quantity })),
          metadata: metadataFrom(phase, {}, `${path}[metadata]`),
          proration_behavior:
            oneOf(phase, 'proration_behavior', ['create_prorations', 'none', 'always_invoice']) ?? 'create_prorations',
        });
      });
      schedule.phases = phases;
    }
    const endBehavior = oneOf(params, 'end_behavior', ['release', 'cancel'] as const);
    if (endBehavior) schedule.end_behavior = endBehavior;
    schedule.metadata = metadataFrom(params, schedule.metadata);
    emit('subscription_schedule.updated', schedule);
    return schedule;
  }

  function releaseSchedule(schedule: SubscriptionSchedule): SubscriptionSchedule {
    if (schedule.status !== 'active' && schedule.status !== 'not_started') {
      throw invalid(
        `You cannot release a subscription schedule that is currently in the \`${schedule.status}\` status.`,
        {},
      );
    }
    const subscription = schedule.subscription ? find<Subscription>('subscription', schedule.subscription) : undefined;
    schedule.status = 'released';
    schedule.released_at = now();
    schedule.released_subscription = schedule.subscription;
    schedule.subscription = null;
    schedule.current_phase = null;
    if (subscription) subscription.schedule = null;
    emit('subscription_schedule.released', schedule);
    return schedule;
  }

  /** A renewal at `end` of a scheduled subscription: the phase that starts then sets its prices. */
  function enterSchedulePhase(subscription: Subscription, end: number): void {
    const id = scheduleOf(subscription);
    const schedule = id ? find<SubscriptionSchedule>('subscription_schedule', id) : undefined;
    if (schedule?.status !== 'active') return;
    const index = schedule.phases.findIndex((phase) => phase.start_date === end);
    const phase = schedule.phases[index];
    if (!phase) return;
    const [first] = subscription.items.data;
    subscription.items.data = phase.items.map((item, position) => {
      const price = load<Price>('price', item.price);
      const existing = position === 0 ? first : undefined;
      const next = subscriptionItem(subscription.id, price, item.quantity, existing?.metadata ?? {}, end);
      if (existing) next.id = existing.id;
      return next;
    });
    subscription.items.total_count = subscription.items.data.length;
    subscription.metadata = { ...subscription.metadata, ...phase.metadata };
    schedule.current_phase = { start_date: phase.start_date, end_date: phase.end_date };
    // The last phase has begun: a `release` schedule lets the subscription go on by itself. (Stripe
    // releases at the end of the last phase; nothing a subscription does differs in between.)
    if (index === schedule.phases.length - 1 && schedule.end_behavior === 'release') releaseSchedule(schedule);
  }

  function cancelSubscription(subscription: Subscription, reason: string, at = now()): Subscription {
    if (subscription.status === 'canceled') {
      throw noSuch('subscription', subscription.id, 'id', 404);
    }
    subscription.status = 'canceled';
    // Its schedule, if any, is canceled with it.
    const managedBy = scheduleOf(subscription);
    const schedule = managedBy ? find<SubscriptionSchedule>('subscription_schedule', managedBy) : undefined;
    if (schedule && (schedule.status === 'active' || schedule.status === 'not_started')) {
      schedule.status = 'canceled';
      schedule.current_phase = null;
      emit('subscription_schedule.canceled', schedule);
    }
    subscription.canceled_at = subscription.canceled_at ?? at;
    subscription.ended_at = at;
    subscription.cancel_at_period_end = false;
    subscription.cancellation_details.reason = reason;
    emit('customer.subscription.deleted', subscription);
    return subscription;
  }

  /** What a test clock does when time passes: trials end, periods renew or end, sessions expire. */
  function runClock(): void {
    const at = now();
    for (const session of all<CheckoutSession>('checkout.session')) {
      if (session.status === 'open' && session.expires_at <= at) {
        session.status = 'expired';
        emit('checkout.session.expired', session);
      }
    }
    for (const subscription of all<Subscription>('subscription')) {
      for (let guard = 0; guard < 1000; guard += 1) {
        if (!['active', 'trialing', 'past_due'].includes(subscription.status)) break;
        const end = subscription.items.data[0]?.current_period_end;
        if (end === undefined || end > at) break;
        if (subscription.cancel_at !== null && subscription.cancel_at <= end) {
          cancelSubscription(subscription, 'cancellation_requested', subscription.cancel_at);
          break;
        }
        const before = clone(subscription);
        if (subscription.status === 'trialing') subscription.status = 'active';
        enterSchedulePhase(subscription, end);
        for (const item of subscription.items.data) {
          const recurring = item.price.recurring ?? { interval: 'month', interval_count: 1 };
          item.current_period_start = end;
          item.current_period_end = addInterval(end, recurring.interval, recurring.interval_count);
        }
        emit('customer.subscription.updated', subscription, changes(before, subscription));
        invoicePeriod(subscription, 'subscription_cycle', 'pm_card_visa');
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // HTTP routing

  interface Call {
    params: StripeParams;
    query: StripeParams;
    ids: string[];
    expand: string[];
  }
  type Handler = (call: Call) => { status?: number; body: unknown };
  const routes: { method: string; pattern: RegExp; handler: Handler }[] = [];
  const route = (method: string, path: string, handler: Handler) => {
    routes.push({ method, pattern: new RegExp(`^${path.replaceAll(':id', '([^/]+)')}$`), handler });
  };
  const one = <T extends StripeObject>(value: T, call: Call) => ({ body: render(value, call.expand) });
  const getId = (call: Call) => call.ids[0] ?? '';
  const filterBy = (query: StripeParams, names: string) => allow(query, `limit starting_after ending_before ${names}`);
  /** `GET path`: the objects of `type` whose `fields` equal the query's (each filter optional), as Stripe pages them. */
  const listRoute = (type: string, path: string, fields: string) =>
    route('GET', path, (call) => {
      filterBy(call.query, fields);
      const wanted = fields.split(' ').map((key) => [key, str(call.query, key)] as const);
      const objects = all<StripeObject>(type).filter((object) =>
        wanted.every(([key, value]) => value === undefined || object[key] === value),
      );
      return { body: list(objects, call.query, path, listExpand(call.expand)) };
    });

  // Customers
  route('POST', '/v1/customers', (call) => one(createCustomer(call.params), call));
  route('GET', '/v1/customers/:id', (call) => {
    const customer = load<Customer>('customer', getId(call));
    return customer.deleted ? { body: { id: customer.id, object: 'customer', deleted: true } } : one(customer, call);
  });
  route('POST', '/v1/customers/:id', (call) => one(updateCustomer(load('customer', getId(call)), call.params), call));
  route('DELETE', '/v1/customers/:id', (call) => {
    const customer = load<Customer>('customer', getId(call));
    if (customer.deleted) throw noSuch('customer', customer.id, 'id', 404);
    customer.deleted = true;
    emit('customer.deleted', customer);
    return { body: { id: customer.id, object: 'customer', deleted: true } };
  });
  route('GET', '/v1/customers', (call) => {
    filterBy(call.query, 'email');
    const email = str(call.query, 'email');
    const customers = all<Customer>('customer').filter((c) => !c.deleted && (email === undefined || c.email === email));
    return { body: list(customers, call.query, '/v1/customers', listExpand(call.expand)) };
  });

  // Products and prices
  route('POST', '/v1/products', (call) => one(createProduct(call.params), call));
  route('GET', '/v1/products/:id', (call) => one(load('product', getId(call)), call));
  route('GET', '/v1/products', (call) => {
    filterBy(call.query, 'active');
    const active = bool(call.query, 'active');
    const products = all<StripeObject>('product').filter((p) => active === undefined || p.active === active);
    return { body: list(products, call.query, '/v1/products', listExpand(call.expand)) };
  });
  route('POST', '/v1/prices', (call) => one(createPrice(call.params), call));
  route('GET', '/v1/prices/:id', (call) => one(load('price', getId(call)), call));
  route('GET', '/v1/prices', (call) => {
    filterBy(call.query, 'product active type lookup_keys');
    const product = str(call.query, 'product');
    const active = bool(call.query, 'active');
    const type = str(call.query, 'type');
    const lookupKeys = arr(call.query, 'lookup_keys');
    const prices = all<Price>('price').filter(
      (p) =>
        (product === undefined || p.product === product) &&
        (active === undefined || p.active === active) &&
        (type === undefined || p.type === type) &&
        (lookupKeys.length === 0 || lookupKeys.includes(String(p.lookup_key))),
    );
    return { body: list(prices, call.query, '/v1/prices', listExpand(call.expand)) };
  });

  // Checkout
  route('POST', '/v1/checkout/sessions', (call) => one(createCheckoutSession(call.params), call));
  route('GET', '/v1/checkout/sessions/:id', (call) => one(load('checkout.session', getId(call)), call));
  route('GET', '/v1/checkout/sessions/:id/line_items', (call) => {
    load('checkout.session', getId(call));
    return { body: lineItemsList(getId(call)) };
  });
  route('POST', '/v1/checkout/sessions/:id/expire', (call) => {
    const session = load<CheckoutSession>('checkout.session', getId(call));
    if (session.status !== 'open') {
      throw invalid(
        `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status}".`,
      );
    }
    session.status = 'expired';
    emit('checkout.session.expired', session);
    return one(session, call);
  });
  listRoute('checkout.session', '/v1/checkout/sessions', 'customer payment_intent subscription status');

  // Subscriptions
  route('POST', '/v1/subscriptions', (call) => one(createSubscription(call.params), call));
  route('GET', '/v1/subscriptions/:id', (call) => one(load('subscription', getId(call)), call));
  route('POST', '/v1/subscriptions/:id', (call) =>
    one(updateSubscription(load('subscription', getId(call)), call.params), call),
  );
  route('POST', '/v1/subscription_schedules', (call) => one(createSchedule(call.params), call));
  route('GET', '/v1/subscription_schedules/:id', (call) => one(load('subscription_schedule', getId(call)), call));
  route('POST', '/v1/subscription_schedules/:id', (call) =>
    one(updateSchedule(load<SubscriptionSchedule>('subscription_schedule', getId(call)), call.params), call),
  );
  route('POST', '/v1/subscription_schedules/:id/release', (call) => {
    allow(call.params, 'preserve_cancel_date');
    return one(releaseSchedule(load<SubscriptionSchedule>('subscription_schedule', getId(call))), call);
  });
  route('DELETE', '/v1/subscriptions/:id', (call) => {
    allow(call.params, 'invoice_now prorate cancellation_details');
    const subscription = load<Subscription>('subscription', getId(call));
    const details = obj(call.params, 'cancellation_details');
    if (details) {
      allow(details, 'comment feedback', 'cancellation_details');
      subscription.cancellation_details.comment = str(details, 'comment') || null;
      subscription.cancellation_details.feedback = str(details, 'feedback') || null;
    }
    return one(cancelSubscription(subscription, 'cancellation_requested'), call);
  });
  route('GET', '/v1/subscriptions', (call) => {
    filterBy(call.query, 'customer status price');
    const customer = str(call.query, 'customer');
    const status = str(call.query, 'status');
    const price = str(call.query, 'price');
    const subscriptions = all<Subscription>('subscription').filter(
      (s) =>
        (customer === undefined || s.customer === customer) &&
        (price === undefined || s.items.data.some((item) => item.price.id === price)) &&
        // Without a status, Stripe lists every subscription that is not canceled.
        (status === 'all' ||
          (status === 'ended'
            ? s.status === 'canceled'
            : status === undefined
              ? s.status !== 'canceled'
              : s.status === status)),
    );
    return { body: list(subscriptions, call.query, '/v1/subscriptions', listExpand(call.expand)) };
  });

  // Invoice items
  route('POST', '/v1/invoiceitems', (call) => one(createInvoiceItem(call.params), call));
  route('GET', '/v1/invoiceitems/:id', (call) => one(load('invoiceitem', getId(call)), call));
  route('DELETE', '/v1/invoiceitems/:id', (call) => {
    const item = load<InvoiceItem>('invoiceitem', getId(call));
    const invoice = item.invoice ? find<Invoice>('invoice', item.invoice) : undefined;
    if (invoice && invoice.status !== 'draft') {
      throw invalid('You can only delete invoice items that are on draft invoices or pending.', {
        code: 'invoice_not_editable',
      });
    }
    store.delete(item.id);
    if (invoice) recompute(invoice);
    emit('invoiceitem.deleted', item);
    return { body: { id: item.id, object: 'invoiceitem', deleted: true } };
  });
  route('GET', '/v1/invoiceitems', (call) => {
    filterBy(call.query, 'customer invoice pending');
    const customer = str(call.query, 'customer');
    const invoice = str(call.query, 'invoice');
    const pending = bool(call.query, 'pending');
    const items = all<InvoiceItem>('invoiceitem').filter(
      (i) =>
        (customer === undefined || i.customer === customer) &&
        (invoice === undefined || i.invoice === invoice) &&
        (pending === undefined || (i.invoice === null) === pending),
    );
    return { body: list(items, call.query, '/v1/invoiceitems', listExpand(call.expand)) };
  });

  // Invoices
  route('POST', '/v1/invoices', (call) => {
    const params = call.params;
    allow(
      params,
      'customer subscription auto_advance collection_method days_until_due description metadata currency pending_invoice_items_behavior footer',
    );
    const customer = load<Customer>('customer', requiredStr(params, 'customer'), 'customer');
    const subscriptionId = str(params, 'subscription');
    const subscription = subscriptionId
      ? load<Subscription>('subscription', subscriptionId, 'subscription')
      : undefined;
    const collection =
      oneOf(params, 'collection_method', ['charge_automatically', 'send_invoice']) ?? 'charge_automatically';
    const invoice = createInvoiceRecord({
      customer,
      currency: str(params, 'currency')?.toLowerCase() ?? subscription?.currency ?? 'usd',
      subscription,
      billingReason: 'manual',
      collection,
      description: str(params, 'description') ?? null,
      metadata: metadataFrom(params),
      autoAdvance: bool(params, 'auto_advance') ?? false,
      daysUntilDue: int(params, 'days_until_due') ?? null,
    });
    // Since API version 2022-08-01 pending items are left out unless asked for.
    if (oneOf(params, 'pending_invoice_items_behavior', ['include', 'exclude']) === 'include') {
      attachPending(invoice, subscription?.id ?? null);
    }
    recompute(invoice);
    emit('invoice.created', invoice);
    return one(invoice, call);
  });
  route('GET', '/v1/invoices/:id', (call) => one(load('invoice', getId(call)), call));
  route('GET', '/v1/invoices/:id/lines', (call) => {
    const invoice = load<Invoice>('invoice', getId(call));
    return { body: { ...clone(invoice.lines), url: `/v1/invoices/${invoice.id}/lines` } };
  });
  route('POST', '/v1/invoices/:id', (call) => {
    allow(call.params, 'metadata description auto_advance footer');
    const invoice = load<Invoice>('invoice', getId(call));
    const before = clone(invoice);
    invoice.metadata = metadataFrom(call.params, invoice.metadata);
    const description = str(call.params, 'description');
    if (description !== undefined) invoice.description = description || null;
    const autoAdvance = bool(call.params, 'auto_advance');
    if (autoAdvance !== undefined) invoice.auto_advance = autoAdvance;
    const previous = changes(before, invoice);
    if (Object.keys(previous).length > 0) emit('invoice.updated', invoice, previous);
    return one(invoice, call);
  });
  route('POST', '/v1/invoices/:id/finalize', (call) => {
    allow(call.params, 'auto_advance');
    const invoice = load<Invoice>('invoice', getId(call));
    finalize(invoice);
    const autoAdvance = bool(call.params, 'auto_advance');
    if (autoAdvance !== undefined) invoice.auto_advance = autoAdvance;
    return one(invoice, call);
  });
  route('POST', '/v1/invoices/:id/pay', (call) => {
    allow(call.params, 'paid_out_of_band payment_method off_session forgive');
    const invoice = load<Invoice>('invoice', getId(call));
    const { declined } = collect(
      invoice,
      str(call.params, 'payment_method') ?? 'pm_card_visa',
      bool(call.params, 'paid_out_of_band') ?? false,
    );
    if (declined) {
      const intentId = invoice.payments.data.at(-1)?.payment.payment_intent;
      const intent = intentId ? find<PaymentIntent>('payment_intent', intentId) : undefined;
      throw new StripeApiError(402, {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        message: 'Your card was declined.',
        charge: intent?.latest_charge ?? undefined,
        payment_intent: intent ? clone(intent) : undefined,
      });
    }
    return one(invoice, call);
  });
  route('POST', '/v1/invoices/:id/void', (call) => {
    const invoice = load<Invoice>('invoice', getId(call));
    if (invoice.status !== 'open' && invoice.status !== 'uncollectible') {
      throw invalid(`You can only void invoices that are open or uncollectible; this invoice is ${invoice.status}.`, {
        code: 'invoice_not_editable',
      });
    }
    invoice.status = 'void';
    invoice.status_transitions.voided_at = now();
    invoice.amount_remaining = 0;
    invoice.next_payment_attempt = null;
    emit('invoice.voided', invoice);
    return one(invoice, call);
  });
  route('GET', '/v1/invoices', (call) => {
    filterBy(call.query, 'customer subscription status collection_method');
    const customer = str(call.query, 'customer');
    const subscription = str(call.query, 'subscription');
    const status = str(call.query, 'status');
    const invoices = all<Invoice>('invoice').filter(
      (i) =>
        (customer === undefined || i.customer === customer) &&
        (subscription === undefined || i.parent?.subscription_details.subscription === subscription) &&
        (status === undefined || i.status === status),
    );
    return { body: list(invoices, call.query, '/v1/invoices', listExpand(call.expand)) };
  });

  // Credit notes (docs.stripe.com/api/credit_notes/create): of a finalized invoice, for an amount or
  // for lines, never more than the invoice leaves to credit. An open invoice's credit note reduces
  // what is due (pre-payment; fully credited, it is paid); a paid one's must say where the money
  // goes: credit_amount (the customer's balance) or out_of_band_amount (post-payment).
  route('POST', '/v1/credit_notes', (call) => {
    const params = call.params;
    allow(params, 'invoice amount lines memo metadata reason credit_amount out_of_band_amount effective_at email_type');
    const invoice = load<Invoice>('invoice', requiredStr(params, 'invoice'), 'invoice');
    if (invoice.status !== 'open' && invoice.status !== 'paid' && invoice.status !== 'uncollectible') {
      throw invalid(
        `Credit notes can only be issued for invoices that are open, paid or uncollectible; ${invoice.id} is ${invoice.status}.`,
        { code: 'invoice_not_editable', param: 'invoice' },
      );
    }
    const lineParams = arrOfObjects(params, 'lines');
    const lines = lineParams.map((line, index) => {
      const path = `lines[${index}]`;
      allow(line, 'type amount invoice_line quantity unit_amount description', path);
      const type = oneOf(line, 'type', ['custom_line_item', 'invoice_line_item'], `${path}[type]`);
      if (!type) throw missingParam(`${path}[type]`);
      if (type === 'custom_line_item') {
        const unitAmount = int(line, 'unit_amount', `${path}[unit_amount]`);
        if (unitAmount === undefined) throw missingParam(`${path}[unit_amount]`);
        const quantity = int(line, 'quantity', `${path}[quantity]`) ?? 1;
        return {
          type,
          amount: unitAmount * quantity,
          quantity,
          unit_amount: unitAmount,
          description: str(line, 'description') ?? null,
          invoice_line_item: null as string | null,
        };
      }
      const invoiceLine = requiredStr(line, 'invoice_line', `${path}[invoice_line]`);
      const known = invoice.lines.data.find((candidate) => candidate.id === invoiceLine);
      if (!known) throw noSuch('invoice line', invoiceLine, `${path}[invoice_line]`);
      const amount = int(line, 'amount', `${path}[amount]`) ?? known.amount;
      if (amount > known.amount) {
        throw invalid(`The amount of ${path} cannot exceed the amount of invoice line ${invoiceLine}.`, {
          param: `${path}[amount]`,
        });
      }
      return {
        type,
        amount,
        quantity: 1,
        unit_amount: amount,
        description: null as string | null,
        invoice_line_item: invoiceLine,
      };
    });
    const amountParam = int(params, 'amount');
    if (amountParam === undefined && lines.length === 0) {
      throw invalid('You must pass either `amount` or `lines` to create a credit note.', { param: 'amount' });
    }
    const linesTotal = lines.reduce((sum, line) => sum + line.amount, 0);
    if (amountParam !== undefined && lines.length > 0 && amountParam !== linesTotal) {
      throw invalid(`The amount (${amountParam}) must equal the sum of the lines (${linesTotal}).`, {
        param: 'amount',
      });
    }
    const total = amountParam ?? linesTotal;
    if (total <= 0) throw invalid('The credit note amount must be greater than 0.', { param: 'amount' });
    const creditAmount = int(params, 'credit_amount') ?? 0;
    const outOfBand = int(params, 'out_of_band_amount') ?? 0;
    const postPayment = invoice.status === 'paid';
    if (postPayment) {
      const left = invoice.total - invoice.post_payment_credit_notes_amount;
      if (total > left) {
        throw invalid(
          `The credit note amount (${total}) cannot exceed the amount that remains to be credited on invoice ${invoice.id} (${left}).`,
          { param: 'amount' },
        );
      }
      if (creditAmount + outOfBand !== total) {
        throw invalid(
          `The sum of credit amount, refund amount and out of band amount (${creditAmount + outOfBand}) must equal the credit note amount (${total}).`,
        );
      }
    } else {
      if (total > invoice.amount_remaining) {
        throw invalid(
          `The credit note amount (${total}) cannot exceed the amount remaining on invoice ${invoice.id} (${invoice.amount_remaining}).`,
          { param: 'amount' },
        );
      }
      if (creditAmount + outOfBand > 0) {
        throw invalid('credit_amount and out_of_band_amount apply only to credit notes of paid invoices.', {
          param: creditAmount > 0 ? 'credit_amount' : 'out_of_band_amount',
        });
      }
    }
    const created = now();
    const id = randomId('cn_');
    const count = all<StripeObject>('credit_note').filter((note) => note.invoice === invoice.id).length;
    const note: StripeObject = {
      id,
      object: 'credit_note',
      amount: total,
      amount_shipping: 0,
      created,
      currency: invoice.currency,
      customer: invoice.customer,
      customer_balance_transaction: creditAmount > 0 ? randomId('cbtxn_') : null,
      discount_amount: 0,
      effective_at: int(params, 'effective_at') ?? created,
      invoice: invoice.id,
      lines: {
        object: 'list',
        data: (lines.length > 0
          ? lines
          : [
              {
                type: 'custom_line_item',
                amount: total,
                quantity: 1,
                unit_amount: total,
                description: null,
                invoice_line_item: null,
              },
            ]
        ).map((line) => ({
          id: randomId('cnli_'),
          object: 'credit_note_line_item',
          amount: line.amount,
          description: line.description,
          invoice_line_item: line.invoice_line_item,
          livemode: false,
          quantity: line.quantity,
          type: line.type,
          unit_amount: line.unit_amount,
        })),
        has_more: false,
        url: `/v1/credit_notes/${id}/lines`,
      },
      livemode: false,
      memo: str(params, 'memo') ?? null,
      metadata: metadataFrom(params),
      number: `${invoice.number ?? invoice.id}-CN-${String(count + 1).padStart(2, '0')}`,
      out_of_band_amount: postPayment ? outOfBand : null,
      pdf: `${baseUrl}/credit_notes/${id}/pdf`,
      pre_payment_amount: postPayment ? 0 : total,
      post_payment_amount: postPayment ? total : 0,
      reason: oneOf(params, 'reason', ['duplicate', 'fraudulent', 'order_change', 'product_unsatisfactory']) ?? null,
      refunds: [],
      status: 'issued',
      subtotal: total,
      total,
      type: postPayment ? 'post_payment' : 'pre_payment',
      voided_at: null,
    };
    put(note);
    const before = clone(invoice);
    if (postPayment) {
      invoice.post_payment_credit_notes_amount += total;
    } else {
      invoice.pre_payment_credit_notes_amount += total;
      invoice.amount_due -= total;
      invoice.amount_remaining -= total;
    }
    emit('credit_note.created', note);
    emit('invoice.updated', invoice, changes(before, invoice));
    // Credited down to nothing due, an open invoice is paid.
    if (!postPayment && invoice.amount_remaining === 0) markPaid(invoice, null);
    return one(note, call);
  });
  route('GET', '/v1/credit_notes/:id', (call) => one(load('credit_note', getId(call)), call));
  listRoute('credit_note', '/v1/credit_notes', 'customer invoice');

  // Payment intents, charges, refunds
  route('POST', '/v1/payment_intents', (call) => {
    const params = call.params;
    allow(
      params,
      'amount currency customer description metadata confirm payment_method payment_method_types automatic_payment_methods receipt_email off_session setup_future_usage statement_descriptor_suffix',
    );
    const amount = int(params, 'amount');
    if (amount === undefined) throw missingParam('amount');
    const currency = requiredStr(params, 'currency').toLowerCase();
    const minimum = minimumCharge[currency];
    if (minimum !== undefined && amount < minimum) {
      throw invalid(`Amount must be at least ${minimum} ${currency}`, { code: 'amount_too_small', param: 'amount' });
    }
    const customerId = str(params, 'customer');
    if (customerId) load('customer', customerId, 'customer');
    const paymentMethod = str(params, 'payment_method');
    if (bool(params, 'confirm')) {
      if (!paymentMethod) {
        throw invalid(
          "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent, provide a `payment_method`.",
          { code: 'payment_intent_unexpected_state' },
        );
      }
      const { intent, declined } = chargeNow({
        amount,
        currency,
        customer: customerId ?? null,
        description: str(params, 'description') ?? null,
        metadata: metadataFrom(params),
        paymentMethod,
      });
      if (declined) {
        throw new StripeApiError(402, {
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'generic_decline',
          message: 'Your card was declined.',
          charge: intent.latest_charge ?? undefined,
          payment_intent: clone(intent),
        });
      }
      return one(intent, call);
    }
    const created = now();
    const intent: PaymentIntent = {
      id: randomId('pi_'),
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      capture_method: 'automatic_async',
      client_secret: '',
      confirmation_method: 'automatic',
      created,
      currency,
      customer: customerId ?? null,
      description: str(params, 'description') ?? null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata: metadataFrom(params),
      payment_method: paymentMethod ?? null,
      payment_method_types: ['card'],
      receipt_email: str(params, 'receipt_email') ?? null,
      setup_future_usage: str(params, 'setup_future_usage') ?? null,
      status: paymentMethod ? 'requires_confirmation' : 'requires_payment_method',
    };
    intent.client_secret = `${intent.id}_secret_${randomId('', 25)}`;
    put(intent);
    emit('payment_intent.created', intent);
    return one(intent, call);
  });
  route('GET', '/v1/payment_intents/:id', (call) => one(load('payment_intent', getId(call)), call));
  listRoute('payment_intent', '/v1/payment_intents', 'customer');
  route('GET', '/v1/charges/:id', (call) => one(load('charge', getId(call)), call));
  listRoute('charge', '/v1/charges', 'customer payment_intent');
  route('POST', '/v1/refunds', (call) => {
    const params = call.params;
    allow(params, 'charge payment_intent amount reason metadata');
    const chargeId = str(params, 'charge');
    const intentId = str(params, 'payment_intent');
    let charge: Charge | undefined;
    if (chargeId) charge = load<Charge>('charge', chargeId, 'charge');
    else if (intentId) {
      const intent = load<PaymentIntent>('payment_intent', intentId, 'payment_intent');
      const latest = intent.latest_charge ? find<Charge>('charge', intent.latest_charge) : undefined;
      if (latest?.status !== 'succeeded') {
        throw invalid(`This PaymentIntent (${intentId}) does not have a successful charge to refund.`, {
          code: 'charge_not_refundable',
          param: 'payment_intent',
        });
      }
      charge = latest;
    } else throw missingParam('charge');
    const reason = oneOf(params, 'reason', ['duplicate', 'fraudulent', 'requested_by_customer']) ?? null;
    return one(refund(charge, int(params, 'amount'), reason, metadataFrom(params)), call);
  });
  route('GET', '/v1/refunds/:id', (call) => one(load('refund', getId(call)), call));
  listRoute('refund', '/v1/refunds', 'charge payment_intent');

  // Events
  route('GET', '/v1/events/:id', (call) => {
    const event = events.find((candidate) => candidate.id === getId(call));
    if (!event) throw noSuch('event', getId(call), 'id', 404);
    return { body: clone(event) };
  });
  route('GET', '/v1/events', (call) => {
    filterBy(call.query, 'type types');
    const type = str(call.query, 'type');
    const types = arr(call.query, 'types');
    const matching = events.filter(
      (event) =>
        (type === undefined ||
          event.type === type ||
          (type.endsWith('*') && event.type.startsWith(type.slice(0, -1)))) &&
        (types.length === 0 || types.includes(event.type)),
    );
    // Unique ids only: a redelivered duplicate is one event at Stripe.
    const unique = [...new Map(matching.map((event) => [event.id, event])).values()];
    return { body: list(unique, call.query, '/v1/events', []) };
  });

  // -------------------------------------------------------------------------------------------

  function sendJson(response: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(body);
  }

  function authenticate(header: string | undefined): StripeApiError | undefined {
    if (!header) {
      return new StripeApiError(401, {
        type: 'invalid_request_error',
        message:
          "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      });
    }
    const key = /^Bearer (\S+)$/.exec(header)?.[1] ?? '';
    if (!/^(sk|rk)_test_\w+$/.test(key)) {
      return new StripeApiError(401, {
        type: 'invalid_request_error',
        message: `Invalid API Key provided: ${key.slice(0, 8)}****${key.slice(-4)}`,
      });
    }
    return undefined;
  }

  async function handleApi(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const method = request.method ?? 'GET';
    const text = await readBody(request);
    const requestId = randomId('req_', 14);
    const idempotencyKey = request.headers['idempotency-key'] as string | undefined;
    const stripeVersion = request.headers['stripe-version'] as string | undefined;
    const query = parseStripeForm(url.search.slice(1));
    let body: StripeParams = {};
    const record: StripeRequestRecord = {
      method,
      path: url.pathname,
      query,
      body,
      idempotencyKey,
      stripeVersion,
      status: 0,
      replayed: false,
      requestId,
    };
    requests.push(record);
    if (idempotencyKey && !idempotencyKeys.includes(idempotencyKey)) idempotencyKeys.push(idempotencyKey);
    const headers: Record<string, string> = { 'request-id': requestId, 'stripe-version': stripeVersion ?? apiVersion };
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    const fail = (error: StripeApiError) => {
      record.status = error.status;
      sendJson(
        response,
        error.status,
        JSON.stringify({ error: { ...error.body, request_log_url: `${baseUrl}/logs/${requestId}` } }, null, 2),
        headers,
      );
    };
    const refused = authenticate(request.headers.authorization);
    if (refused) return fail(refused);
    if (text.length > 0) {
      const type = request.headers['content-type'] ?? '';
      if (!type.startsWith('application/x-www-form-urlencoded')) {
        return fail(
          invalid(
            `Invalid request: unsupported Content-Type ${type}. If error persists and you need assistance, please contact support@stripe.com.`,
          ),
        );
      }
      body = parseStripeForm(text);
      record.body = body;
    }
    const fingerprint = canonical({ method, path: url.pathname, body });
    if (method === 'POST' && idempotencyKey) {
      const earlier = idempotent.get(idempotencyKey);
      if (earlier && earlier.fingerprint !== fingerprint) {
        return fail(
          new StripeApiError(400, {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          }),
        );
      }
      if (earlier) {
        record.status = earlier.status;
        record.replayed = true;
        sendJson(response, earlier.status, earlier.body, {
          ...headers,
          'idempotent-replayed': 'true',
          'original-request': earlier.requestId,
          'stripe-version': earlier.stripeVersion,
        });
        return;
      }
    }
    const match = routes
      .map((candidate) => ({ candidate, found: candidate.pattern.exec(url.pathname) }))
      .find(({ candidate, found }) => found && candidate.method === method);
    if (!match?.found) {
      return fail(
        new StripeApiError(404, {
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        }),
      );
    }
    const params = method === 'GET' ? query : body;
    const expand = arr(params, 'expand').filter((path): path is string => typeof path === 'string');
    currentRequest = { id: requestId, idempotency_key: idempotencyKey ?? null };
    try {
      const result = match.candidate.handler({
        params,
        query,
        ids: match.found.slice(1).map((part) => decodeURIComponent(part)),
        expand,
      });
      const status = result.status ?? 200;
      const json = JSON.stringify(result.body, null, 2);
      record.status = status;
      // Stripe saves the result of a request that ran, to replay it for the same key (docs.stripe.com/api/idempotent_requests).
      if (method === 'POST' && idempotencyKey) {
        idempotent.set(idempotencyKey, {
          fingerprint,
          status,
          body: json,
          requestId,
          stripeVersion: headers['stripe-version'] ?? apiVersion,
        });
      }
      sendJson(response, status, json, headers);
    } catch (error) {
      if (error instanceof StripeApiError) return fail(error);
      throw error;
    } finally {
      currentRequest = { id: null, idempotency_key: null };
    }
  }

  /** The hosted pages: a checkout a browser test can pay, and an invoice's status. */
  async function handlePage(request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean> {
    const checkout = /^\/checkout\/([^/]+)(\/pay)?$/.exec(url.pathname);
    if (checkout) {
      const session = find<CheckoutSession>('checkout.session', checkout[1] ?? '');
      if (!session) {
        response
          .writeHead(404, { 'content-type': 'text/html; charset=utf-8' })
          .end('<h1>Checkout session not found</h1>');
        return true;
      }
      if (checkout[2] && request.method === 'POST') {
        await readBody(request);
        if (session.status === 'open') await helpers.completeCheckout(session.id);
        const target = (session.success_url ?? `${baseUrl}/checkout/${session.id}`).replaceAll(
          '{CHECKOUT_SESSION_ID}',
          session.id,
        );
        response.writeHead(303, { location: target }).end();
        return true;
      }
      const amount = (session.amount_total / 100).toFixed(2);
      const cancel = session.cancel_url ? `<a href="${escapeHtml(session.cancel_url)}">Cancel</a>` : '';
      const form =
        session.status === 'open'
          ? `<form method="post" action="/checkout/${session.id}/pay"><button type="submit">Pay ${amount} ${session.currency.toUpperCase()}</button></form>${cancel}`
          : `<p>This checkout session is ${session.status}.</p>`;
      response
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end(`<!doctype html><title>Checkout (local Stripe)</title><h1>${accountName}</h1>${form}`);
      return true;
    }
    const invoicePage = /^\/invoices\/([^/]+)$/.exec(url.pathname);
    if (invoicePage && request.method === 'GET') {
      const invoice = find<Invoice>('invoice', invoicePage[1] ?? '');
      response
        .writeHead(invoice ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' })
        .end(
          invoice
            ? `<!doctype html><title>Invoice ${escapeHtml(invoice.number ?? invoice.id)}</title><p>Status: ${invoice.status}</p><p>Amount due: ${invoice.amount_due} ${invoice.currency}</p>`
            : '<h1>Invoice not found</h1>',
        );
      return true;
    }
    return false;
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://stripe.test');
    const work = url.pathname.startsWith('/v1/')
      ? handleApi(request, response, url)
      : handlePage(request, response, url).then((handled) => {
          if (!handled) response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
        });
    work.catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            error: { type: 'api_error', message: error instanceof Error ? error.message : String(error) },
          }),
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;

  /** Runs a state change outside any API request, then waits until its events are delivered. */
  async function asHelper<T>(change: () => T): Promise<T> {
    const result = change();
    await settled();
    return result;
  }

  const helpers = {
    completeCheckout: (sessionId: string) => asHelper(() => render(completeCheckoutNow(sessionId), [])),
    payInvoice: (invoiceId: string) =>
      asHelper(() => render(collect(load<Invoice>('invoice', invoiceId), 'pm_card_visa').invoice, [])),
    failInvoicePayment: (invoiceId: string) =>
      asHelper(() => render(collect(load<Invoice>('invoice', invoiceId), declinedPaymentMethod).invoice, [])),
    refundCharge: (chargeId: string, refundOptions: { amount?: number } = {}) =>
      asHelper(() =>
        render(refund(load<Charge>('charge', chargeId), refundOptions.amount, 'requested_by_customer', {}), []),
      ),
    deleteSubscription: (subscriptionId: string) =>
      asHelper(() =>
        render(cancelSubscription(load<Subscription>('subscription', subscriptionId), 'cancellation_requested'), []),
      ),
  };

  return {
    url: baseUrl,
    port,
    apiKey,
    webhookSecret,
    get webhookUrl() {
      return webhookUrl;
    },
    set webhookUrl(value: string | undefined) {
      assertLoopback(value);
      webhookUrl = value;
    },
    stripeConfig: () => ({ host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0, telemetry: false }),
    requests,
    get idempotencyKeys() {
      return [...idempotencyKeys];
    },
    events,
    deliveries,
    objects: (type) => all(type).map((value) => clone(value)),
    object: (id) => {
      const value = store.get(id);
      return value ? clone(value) : undefined;
    },
    ...helpers,
    async sendEvent(type, object, sendOptions = {}) {
      const event: StripeEventRecord = {
        id: sendOptions.id ?? randomId('evt_'),
        object: 'event',
        api_version: apiVersion,
        created: sendOptions.created ?? now(),
        data: {
          object: clone(object),
          ...(sendOptions.previousAttributes ? { previous_attributes: clone(sendOptions.previousAttributes) } : {}),
        },
        livemode: false,
        pending_webhooks: webhookUrl ? 1 : 0,
        request: { id: null, idempotency_key: null },
        type,
      };
      events.push(event);
      await schedule(event);
      return event;
    },
    async redeliver(eventId) {
      const event = events.find((candidate) => candidate.id === eventId);
      if (!event) throw new Error(`No event ${eventId} was recorded`);
      const delivery = await schedule(event);
      if (!delivery) throw new Error(`Event ${eventId} was not sent: no webhookUrl, or its type is not enabled`);
      return delivery;
    },
    async advanceClock(seconds) {
      if (!Number.isInteger(seconds) || seconds < 0)
        throw new Error('advanceClock takes a whole number of seconds, ≥ 0');
      clockOffset += seconds;
      runClock();
      await settled();
    },
    now,
    settled,
    async close() {
      await settled();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}
