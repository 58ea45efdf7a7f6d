import { randomUUID } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { isPrivateAddress } from '../http/private-address.js';
import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import type { Database } from '../storage/database.js';
import { checkEndpointUrl, hostOf } from './endpoint-url.js';
import { nextAttemptAt } from './retry-schedule.js';
import { signWebhook } from './webhook-signature.js';
import { webhookSecretContext } from './webhook-store.js';

/** One attempt gives up after this long without a complete answer. */
export const deliveryTimeoutMs = 10_000;
/** A claimed delivery is due again after this if its worker never records a result (it crashed). */
const claimMs = 2 * 60_000;
/** Bytes of the answer kept in the attempt log. */
const responseBodyLimit = 2048;
const batchSize = 20;

export interface DeliverWebhooksOptions {
  database: Database;
  keyring: MasterKeyring;
  logger: Logger;
  /** TOLLGATE_WEBHOOKS_ALLOW_PRIVATE: endpoints may be on private and loopback addresses. */
  allowPrivate: boolean;
  /** The clock that decides what is due and schedules retries; tests move it forward. */
  now?: () => Date;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface DeliveryReport {
  attempted: number;
  succeeded: number;
  failed: number;
  exhausted: number;
}

interface Claimed {
  id: string;
  attempt_count: number;
  give_up_at: Date;
  event_id: string;
  event_type: string;
  team_id: string;
  payload: Record<string, unknown>;
  event_created_at: Date;
  url: string;
  secret_sealed: string;
  endpoint_id: string;
}

interface AttemptResult {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  responseBody: string | null;
}

/**
 * Claims due deliveries (FOR UPDATE SKIP LOCKED, so concurrent workers never claim the same one) by
 * moving their next attempt past the claim time in one short transaction, sends them without holding
 * a transaction open, then records each result under the claim. A worker that dies mid-send leaves the
 * delivery due again when the claim ends: delivery is at least once, and receivers dedupe on
 * Tollgate-Event-Id.
 */
export async function deliverDueWebhooks(options: DeliverWebhooksOptions): Promise<DeliveryReport> {
  const report: DeliveryReport = { attempted: 0, succeeded: 0, failed: 0, exhausted: 0 };
  const now = options.now ?? (() => new Date());
  for (;;) {
    if (options.signal?.aborted) return report;
    const claimId = randomUUID();
    const claimedAt = now();
    const claimed = await options.database.transaction(async (tx) => {
      const ids = await tx.query<{ id: string }>(
        `UPDATE webhook_deliveries SET claim_id = $2, next_attempt_at = $3, updated_at = now()
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1
                      ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [claimedAt, claimId, new Date(claimedAt.getTime() + claimMs), batchSize],
      );
      if (ids.rowCount === 0) return [];
      const rows = await tx.query<Claimed>(
        `SELECT d.id, d.attempt_count, d.give_up_at, d.event_id, ev.type AS event_type, ev.team_id, ev.payload,
                ev.created_at AS event_created_at, e.url, e.secret_sealed, e.id AS endpoint_id
         FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
           JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.id = ANY($1::uuid[])`,
        [ids.rows.map((row) => row.id)],
      );
      return rows.rows;
    });
    if (claimed.length === 0) return report;
    await Promise.all(
      claimed.map(async (delivery) => {
        const result = await attempt(delivery, options, now());
        const outcome = await record(delivery, claimId, result, options, now());
        report.attempted++;
        if (outcome) report[outcome]++;
      }),
    );
    if (claimed.length < batchSize) return report;
  }
}

async function attempt(delivery: Claimed, options: DeliverWebhooksOptions, at: Date): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let secret: string;
  try {
    secret = options.keyring.decryptText(delivery.secret_sealed, webhookSecretContext(delivery.endpoint_id));
  } catch (error) {
    options.logger.error({ err: error, endpoint: delivery.endpoint_id }, 'cannot open a webhook signing secret');
    return {
      statusCode: null,
      error: 'the signing secret could not be opened',
      durationMs: elapsed(),
      responseBody: null,
    };
  }
  const body = JSON.stringify({
    id: delivery.event_id,
    type: delivery.event_type,
    created_at: delivery.event_created_at.toISOString(),
    team_id: delivery.team_id,
    data: delivery.payload,
  });
  try {
    const url = await checkEndpointUrl(delivery.url, { allowPrivate: options.allowPrivate });
    const answer = await post(
      url,
      body,
      {
        'content-type': 'application/json',
        'user-agent': 'Tollgate-Webhooks/1',
        'tollgate-signature': signWebhook(secret, body, Math.floor(at.getTime() / 1000)),
        'tollgate-event-id': delivery.event_id,
        'tollgate-event-type': delivery.event_type,
        'tollgate-delivery-id': delivery.id,
      },
      { timeoutMs: options.timeoutMs ?? deliveryTimeoutMs, allowPrivate: options.allowPrivate },
    );
    const ok = answer.statusCode >= 200 && answer.statusCode < 300;
    return {
      statusCode: answer.statusCode,
      error: ok ? null : `the endpoint answered ${answer.statusCode}`,
      durationMs: elapsed(),
      responseBody: answer.body,
    };
  } catch (error) {
    const message = (error as { message?: string }).message ?? String(error);
    return { statusCode: null, error: message.slice(0, 1000), durationMs: elapsed(), responseBody: null };
  }
}

/** Records the attempt and the delivery's new state, only if this run still holds the claim. */
async function record(
  delivery: Claimed,
  claimId: string,
  result: AttemptResult,
  options: DeliverWebhooksOptions,
  at: Date,
): Promise<'succeeded' | 'failed' | 'exhausted' | undefined> {
  const succeeded = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
  const next = succeeded ? undefined : nextAttemptAt(delivery.attempt_count + 1, at, delivery.give_up_at);
  const status = succeeded ? 'succeeded' : next ? 'failed' : 'exhausted';
  return options.database.transaction(async (tx) => {
    const updated = await tx.query(
      `UPDATE webhook_deliveries SET status = $3, attempt_count = attempt_count + 1, next_attempt_at = $4,
         claim_id = NULL, last_status_code = $5, last_error = $6, last_response_ms = $7, updated_at = now(),
         completed_at = CASE WHEN $3 IN ('succeeded', 'exhausted') THEN now() END
       WHERE id = $1 AND claim_id = $2`,
      [delivery.id, claimId, status, next ?? null, result.statusCode, result.error, result.durationMs],
    );
    if (updated.rowCount === 0) return undefined;
    await tx.query(
      `INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms, response_body)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [delivery.id, at, result.statusCode, result.error, result.durationMs, result.responseBody],
    );
    return status;
  });
}

/**
 * Connects only to addresses the setting allows, checked on the addresses DNS answers at connection
 * time, so a host that resolved to a public address when the endpoint was added cannot be pointed
 * at the internal network later.
 */
function guardedLookup(allowPrivate: boolean) {
  return (
    hostname: string,
    lookupOptions: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    dnsLookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const allowed = allowPrivate ? addresses : addresses.filter((entry) => !isPrivateAddress(entry.address));
      if (allowed.length === 0) {
        return callback(
          Object.assign(new Error(`${hostname} resolves to a private or loopback address`), { code: 'EPRIVATE' }),
          [],
        );
      }
      if (lookupOptions.all) return callback(null, allowed);
      const first = allowed[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

/** POSTs without following redirects; the answer's first bytes as text. */
function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; allowPrivate: boolean },
): Promise<{ statusCode: number; body: string }> {
  const host = hostOf(url);
  if (!options.allowPrivate && isIP(host) && isPrivateAddress(host)) {
    return Promise.reject(new Error(`${host} is a private or loopback address`));
  }
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        lookup: guardedLookup(options.allowPrivate) as never,
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          const text = Buffer.concat(chunks).subarray(0, responseBodyLimit).toString('utf8').replace(/\0/g, '');
          resolve({ statusCode: response.statusCode ?? 0, body: text.slice(0, responseBodyLimit) });
          response.destroy();
        };
        response.on('data', (chunk: Buffer) => {
          if (kept < responseBodyLimit) {
            chunks.push(chunk);
            kept += chunk.length;
          }
          if (kept >= responseBodyLimit) finish();
        });
        response.on('end', finish);
        response.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      },
    );
    const timer = setTimeout(
      () => request.destroy(new Error(`no complete answer within ${options.timeoutMs / 1000} s`)),
      options.timeoutMs,
    );
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end(body);
  });
}

/** The worker's webhook sender: every second, everything due. */
export function webhookDeliveryJob(options: Omit<DeliverWebhooksOptions, 'signal' | 'now'>): Job {
  return {
    name: 'webhook-delivery',
    intervalMs: 1_000,
    async run(signal) {
      const report = await deliverDueWebhooks({ ...options, signal });
      if (report.attempted > 0) options.logger.debug({ ...report }, 'webhooks delivered');
    },
  };
}
