import type Stripe from 'stripe';
import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute, type Route } from '../http/route.js';
import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import type { Database, Queryable } from '../storage/database.js';

/**
 * How far the signature's timestamp may be from our clock, in seconds, either way. Stripe's SDK
 * refuses only old timestamps (its default is also 300 s); one from the future is refused here.
 */
export const webhookToleranceSeconds = 300;

export interface VerifyStripeWebhookOptions {
  /** The exact bytes received: a re-serialized body would not match the signature. */
  payload: Buffer;
  /** The `Stripe-Signature` header. */
  signature: string | undefined;
  /** STRIPE_WEBHOOK_SECRET, `whsec_...`. */
  secret: string;
  /** Our clock, in milliseconds since the epoch. */
  now?: number;
}

/**
 * Checks a webhook the way Stripe documents (docs.stripe.com/webhooks/signature), with the SDK's
 * `webhooks.constructEvent` on the raw body, and returns the event. Throws `invalid_signature` when
 * the header is missing or no signature in it matches, `stale_webhook` when the signature matches
 * but was made more than 5 minutes before or after `now` (a replayed or held-back request).
 */
export async function verifyStripeWebhook(options: VerifyStripeWebhookOptions): Promise<Stripe.Event> {
  const now = options.now ?? Date.now();
  if (!options.signature) {
    throw new TollgateError('invalid_signature', 'the Stripe-Signature header is missing');
  }
  const { default: StripeSdk } = await import('stripe');
  let event: Stripe.Event;
  try {
    event = StripeSdk.webhooks.constructEvent(
      options.payload,
      options.signature,
      options.secret,
      webhookToleranceSeconds,
      undefined,
      now,
    );
  } catch (error) {
    if (error instanceof StripeSdk.errors.StripeSignatureVerificationError) {
      // The SDK checks the signature first and the age second, so this message means a good signature.
      if (/tolerance/i.test(error.message)) throw staleWebhook();
      throw new TollgateError('invalid_signature', 'the Stripe-Signature header does not match the body');
    }
    // The signature matched but the body is not a JSON event: not something Stripe sent.
    throw new TollgateError('invalid_signature', 'the signed body is not a Stripe event');
  }
  const timestamp = Number(/(?:^|,)\s*t=(\d+)/.exec(options.signature)?.[1]);
  if (!Number.isSafeInteger(timestamp) || timestamp - Math.floor(now / 1000) > webhookToleranceSeconds) {
    throw staleWebhook();
  }
  if (typeof event.id !== 'string' || typeof event.type !== 'string' || !Number.isSafeInteger(event.created)) {
    throw new TollgateError('invalid_signature', 'the signed body is not a Stripe event');
  }
  return event;
}

function staleWebhook(): TollgateError {
  return new TollgateError(
    'stale_webhook',
    `the Stripe-Signature timestamp is more than ${webhookToleranceSeconds / 60} minutes from this server's clock`,
    { hint: "check this server's clock (NTP); Stripe retries the event with a new signature" },
  );
}

/** The id of the object an event is about (`data.object.id`), if it has one. */
function objectIdOf(event: Stripe.Event): string | null {
  const object = (event.data as { object?: { id?: unknown } } | undefined)?.object;
  return typeof object?.id === 'string' ? object.id : null;
}

/**
 * Stores a verified event by its id, once: true when it is new, false for a duplicate delivery
 * (which changes nothing, and is not processed again).
 */
export async function storeStripeEvent(db: Queryable, event: Stripe.Event, at: Date = new Date()): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO stripe_events (id, type, object_id, created, livemode, payload, next_attempt_at, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
     ON CONFLICT (id) DO NOTHING`,
    [event.id, event.type, objectIdOf(event), event.created, event.livemode === true, JSON.stringify(event), at],
  );
  return result.rowCount === 1;
}

export interface StripeWebhookRouteOptions {
  database: Database;
  /** STRIPE_WEBHOOK_SECRET; without it the route answers 404 `stripe_not_configured`. */
  webhookSecret: string | undefined;
  logger: Logger;
}

/**
 * `POST /v1/stripe/webhook`: no session, the signature is the authentication. It verifies, stores
 * and answers; the stripe-events job does the work, so Stripe never waits on our processing.
 */
export function stripeWebhookRoutes(options: StripeWebhookRouteOptions): Route[] {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/stripe/webhook',
      operationId: 'receiveStripeWebhook',
      summary: 'Receive a Stripe event (signed by Stripe; no session)',
      description:
        'Verifies the Stripe-Signature header on the raw body (5 minutes of tolerance either way), stores the event once by its id and answers at once; events are processed in the background, oldest first.',
      tags: ['billing'],
      responses: {
        200: {
          description: 'Stored (or already stored: a duplicate delivery)',
          schema: z.object({ received: z.literal(true), duplicate: z.boolean() }),
        },
        400: { description: 'invalid_signature or stale_webhook; nothing was stored' },
        404: { description: 'stripe_not_configured' },
      },
      handler: async (ctx) => {
        if (options.webhookSecret === undefined) {
          throw new TollgateError('stripe_not_configured', 'Stripe is not configured on this installation', {
            hint: 'set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (docs/stripe.md)',
          });
        }
        const event = await verifyStripeWebhook({
          payload: ctx.request.rawBody ?? Buffer.alloc(0),
          signature: ctx.get('stripe-signature') || undefined,
          secret: options.webhookSecret,
        });
        const stored = await storeStripeEvent(options.database, event);
        options.logger.debug(
          { stripe_event: event.id, type: event.type, duplicate: !stored },
          stored ? 'Stripe event stored' : 'Stripe event already stored',
        );
        ctx.body = { received: true, duplicate: !stored };
      },
    }) as Route,
  ];
}

// ---------------------------------------------------------------------------------------------
// Processing

export interface StripeEventContext {
  /** The transaction the event is processed in: the handler's writes commit with its `processed` mark. */
  tx: Queryable;
  /**
   * True when an event about the same Stripe object (`data.object.id`) with a later `created` was
   * already processed: an out-of-order event a handler should not apply over newer state. Events of
   * the same second cannot be ordered by `created`; re-fetch the object from Stripe when it matters.
   */
  newerEventProcessed(): Promise<boolean>;
  /**
   * Runs `callback` once the event's transaction committed (never when the handler fails): for
   * announcements other processes act on by reading the database, such as a team-policy invalidation.
   */
  afterCommit(callback: () => Promise<void> | void): void;
  logger: Logger;
}

/** Applies one event. Throwing rolls back its writes; the event is retried later. */
export type StripeEventHandler = (event: Stripe.Event, context: StripeEventContext) => Promise<void>;

/** Which handler takes which event type; the billing domain fills it. */
export interface StripeEventHandlers {
  /** One handler per type; registering a type twice throws. */
  register(type: string, handler: StripeEventHandler): void;
  handlerFor(type: string): StripeEventHandler | undefined;
  types(): string[];
}

export function createStripeEventHandlers(): StripeEventHandlers {
  const handlers = new Map<string, StripeEventHandler>();
  return {
    register(type, handler) {
      if (handlers.has(type)) throw new Error(`a handler for Stripe event ${type} is already registered`);
      handlers.set(type, handler);
    },
    handlerFor: (type) => handlers.get(type),
    types: () => [...handlers.keys()].sort(),
  };
}

/** Whether an event about `objectId` created after `created` (unix seconds) was processed. */
export async function newerStripeEventProcessed(
  db: Queryable,
  event: { id: string; objectId: string | null; created: number },
): Promise<boolean> {
  if (event.objectId === null) return false;
  const result = await db.query<{ newer: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM stripe_events
                    WHERE object_id = $1 AND status = 'processed' AND created > $2 AND id <> $3) AS newer`,
    [event.objectId, event.created, event.id],
  );
  return result.rows[0]?.newer === true;
}

/** Failed attempts before an event is left `failed` (about 15 hours of retries). */
export const maxStripeEventAttempts = 20;
const firstRetryDelayMs = 30_000;
const maxRetryDelayMs = 3_600_000;

/** After the n-th failed attempt: 30 s, 1 m, 2 m, ... doubling up to an hour. */
export function stripeEventRetryDelayMs(failedAttempts: number): number {
  return Math.min(firstRetryDelayMs * 2 ** Math.min(Math.max(0, failedAttempts - 1), 10), maxRetryDelayMs);
}

export interface ProcessStripeEventsOptions {
  database: Database;
  handlers: StripeEventHandlers;
  logger: Logger;
  /** Decides what is due and schedules retries; tests move it forward. */
  now?: () => Date;
  signal?: AbortSignal;
}

export interface StripeEventReport {
  processed: number;
  ignored: number;
  /** Failed attempts that will be retried. */
  retrying: number;
  /** Failed attempts that were the last. */
  failed: number;
}

interface PendingEvent {
  id: string;
  type: string;
  object_id: string | null;
  created: string;
  payload: Stripe.Event;
  attempts: number;
}

/**
 * Processes every due event, oldest Stripe `created` first, one transaction each. The event's row is
 * taken with FOR UPDATE SKIP LOCKED and held until its outcome is written, so two runs at once
 * (two workers) never process one event twice, and a slow or failing event does not hold up others.
 * A handler that throws is rolled back to a savepoint, and the failure is recorded (attempts, last
 * error, next attempt) in the same transaction.
 */
export async function processStripeEvents(options: ProcessStripeEventsOptions): Promise<StripeEventReport> {
  const report: StripeEventReport = { processed: 0, ignored: 0, retrying: 0, failed: 0 };
  const now = options.now ?? (() => new Date());
  for (;;) {
    if (options.signal?.aborted) return report;
    const committed: (() => Promise<void> | void)[] = [];
    const outcome = await options.database.transaction((tx) => processNext(tx, options, now(), committed));
    if (outcome === undefined) return report;
    report[outcome]++;
    for (const callback of committed) {
      try {
        await callback();
      } catch (error) {
        options.logger.warn({ err: error }, 'an after-commit step of a Stripe event failed');
      }
    }
  }
}

async function processNext(
  tx: Queryable,
  options: ProcessStripeEventsOptions,
  at: Date,
  committed: (() => Promise<void> | void)[],
): Promise<keyof StripeEventReport | undefined> {
  const row = (
    await tx.query<PendingEvent>(
      `SELECT id, type, object_id, created, payload, attempts FROM stripe_events
       WHERE status = 'pending' AND next_attempt_at <= $1
       ORDER BY created, received_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`,
      [at],
    )
  ).rows[0];
  if (!row) return undefined;
  const logger = options.logger.child({ stripe_event: row.id, type: row.type });
  const handler = options.handlers.handlerFor(row.type);
  if (!handler) {
    await tx.query(
      `UPDATE stripe_events SET status = 'ignored', next_attempt_at = NULL, finished_at = $2 WHERE id = $1`,
      [row.id, at],
    );
    logger.info('no handler takes this Stripe event type: ignored');
    return 'ignored';
  }
  await tx.query('SAVEPOINT stripe_event_handler');
  const afterCommit: (() => Promise<void> | void)[] = [];
  try {
    await handler(row.payload, {
      tx,
      logger,
      afterCommit: (callback) => void afterCommit.push(callback),
      newerEventProcessed: () =>
        newerStripeEventProcessed(tx, { id: row.id, objectId: row.object_id, created: Number(row.created) }),
    });
    await tx.query('RELEASE SAVEPOINT stripe_event_handler');
    committed.push(...afterCommit);
  } catch (error) {
    await tx.query('ROLLBACK TO SAVEPOINT stripe_event_handler');
    const attempts = row.attempts + 1;
    const last = attempts >= maxStripeEventAttempts;
    const message = (error instanceof Error ? error.message : String(error)).slice(0, 1000);
    await tx.query(
      `UPDATE stripe_events SET attempts = $2, last_error = $3, status = $4, next_attempt_at = $5, finished_at = $6
       WHERE id = $1`,
      [
        row.id,
        attempts,
        message,
        last ? 'failed' : 'pending',
        last ? null : new Date(at.getTime() + stripeEventRetryDelayMs(attempts)),
        last ? at : null,
      ],
    );
    if (last) logger.error({ err: error, attempts }, 'Stripe event handler failed for the last time: event failed');
    else logger.warn({ err: error, attempts }, 'Stripe event handler failed: will retry');
    return last ? 'failed' : 'retrying';
  }
  await tx.query(
    `UPDATE stripe_events SET status = 'processed', attempts = attempts + 1, last_error = NULL,
       next_attempt_at = NULL, finished_at = $2 WHERE id = $1`,
    [row.id, at],
  );
  return 'processed';
}

/** The worker job that processes stored Stripe events, every second. */
export function stripeEventJob(options: Omit<ProcessStripeEventsOptions, 'signal' | 'now'>): Job {
  return {
    name: 'stripe-events',
    intervalMs: 1000,
    async run(signal) {
      const report = await processStripeEvents({ ...options, signal });
      if (report.processed + report.ignored + report.retrying + report.failed > 0) {
        options.logger.debug({ job: 'stripe-events', ...report }, 'Stripe events processed');
      }
    },
  };
}
