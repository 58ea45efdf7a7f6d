import { randomUUID } from 'node:crypto';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import type { Queryable } from '../storage/database.js';
import { deliveryWindowMs, pingEventType, type WebhookEventType } from './webhook-events.js';
import { newWebhookSecret } from './webhook-signature.js';

/** The context an endpoint's signing secret is sealed under (rotate-secrets.ts lists it). */
export const webhookSecretContext = (endpointId: string) => `webhook_secret:endpoint:${endpointId}`;

export const deliveryStatuses = ['pending', 'succeeded', 'failed', 'exhausted'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

export interface WebhookEndpoint {
  id: string;
  teamId: string;
  url: string;
  description: string | null;
  eventTypes: WebhookEventType[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface EndpointRow {
  id: string;
  team_id: string;
  url: string;
  description: string | null;
  event_types: WebhookEventType[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
}

const endpointColumns = 'id, team_id, url, description, event_types, enabled, created_at, updated_at';

const toEndpoint = (row: EndpointRow): WebhookEndpoint => ({
  id: row.id,
  teamId: row.team_id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);

/** Creates an endpoint with a new signing secret, sealed at rest; the secret is answered this once. */
export async function createWebhookEndpoint(
  tx: Queryable,
  keyring: MasterKeyring,
  input: { teamId: string; url: string; description?: string; eventTypes: readonly WebhookEventType[] },
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const id = randomUUID();
  const secret = newWebhookSecret();
  const result = await tx.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, team_id, url, description, event_types, secret_sealed)
     VALUES ($1, $2, $3, $4, $5::text[], $6) RETURNING ${endpointColumns}`,
    [
      id,
      input.teamId,
      input.url,
      input.description ?? null,
      [...new Set(input.eventTypes)],
      keyring.encrypt(secret, webhookSecretContext(id)),
    ],
  );
  return { endpoint: toEndpoint(result.rows[0] as EndpointRow), secret };
}

export async function listWebhookEndpoints(db: Queryable, teamId: string): Promise<WebhookEndpoint[]> {
  const result = await db.query<EndpointRow>(
    `SELECT ${endpointColumns} FROM webhook_endpoints WHERE team_id = $1 ORDER BY created_at DESC, id`,
    [teamId],
  );
  return result.rows.map(toEndpoint);
}

/** An endpoint of the team; undefined for another team's endpoint as for none. */
export async function findWebhookEndpoint(
  db: Queryable,
  input: { teamId: string; endpointId: string },
): Promise<WebhookEndpoint | undefined> {
  if (!isUuid(input.endpointId)) return undefined;
  const result = await db.query<EndpointRow>(
    `SELECT ${endpointColumns} FROM webhook_endpoints WHERE team_id = $1 AND id = $2`,
    [input.teamId, input.endpointId],
  );
  const row = result.rows[0];
  return row ? toEndpoint(row) : undefined;
}

/** Deletes an endpoint with its deliveries and their attempts; false when the team has no such endpoint. */
export async function deleteWebhookEndpoint(
  tx: Queryable,
  input: { teamId: string; endpointId: string },
): Promise<WebhookEndpoint | undefined> {
  if (!isUuid(input.endpointId)) return undefined;
  const result = await tx.query<EndpointRow>(
    `DELETE FROM webhook_endpoints WHERE team_id = $1 AND id = $2 RETURNING ${endpointColumns}`,
    [input.teamId, input.endpointId],
  );
  const row = result.rows[0];
  return row ? toEndpoint(row) : undefined;
}

/** A `ping` event queued for one endpoint, whatever it subscribes to. */
export async function enqueuePing(
  tx: Queryable,
  input: { endpoint: WebhookEndpoint },
): Promise<{ eventId: string; deliveryId: string }> {
  const event = await tx.query<{ id: string }>(
    'INSERT INTO webhook_events (team_id, type, payload) VALUES ($1, $2, $3::jsonb) RETURNING id',
    [input.endpoint.teamId, pingEventType, JSON.stringify({ endpoint_id: input.endpoint.id })],
  );
  const eventId = (event.rows[0] as { id: string }).id;
  const deliveryId = await insertDelivery(tx, {
    eventId,
    endpointId: input.endpoint.id,
    teamId: input.endpoint.teamId,
  });
  return { eventId, deliveryId };
}

/** A new delivery, due now, tried for 3 days from now. */
async function insertDelivery(
  tx: Queryable,
  input: { eventId: string; endpointId: string; teamId: string; replayOf?: string },
): Promise<string> {
  const result = await tx.query<{ id: string }>(
    `INSERT INTO webhook_deliveries (event_id, endpoint_id, team_id, next_attempt_at, give_up_at, replay_of)
     VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4), $5) RETURNING id`,
    [input.eventId, input.endpointId, input.teamId, deliveryWindowMs / 1000, input.replayOf ?? null],
  );
  return (result.rows[0] as { id: string }).id;
}

export interface WebhookDelivery {
  id: string;
  eventId: string;
  eventType: string;
  endpointId: string;
  endpointUrl: string;
  status: DeliveryStatus;
  attemptCount: number;
  nextAttemptAt: Date | null;
  giveUpAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
  lastResponseMs: number | null;
  replayOf: string | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

export interface WebhookAttempt {
  attemptedAt: Date;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  responseBody: string | null;
}

interface DeliveryRow {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  endpoint_url: string;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: Date | null;
  give_up_at: Date;
  last_status_code: number | null;
  last_error: string | null;
  last_response_ms: number | null;
  replay_of: string | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}

// A claimed delivery's next_attempt_at is the end of the claim, not a planned retry; it is shown as is.
const deliveryColumns = `d.id, d.event_id, ev.type AS event_type, d.endpoint_id, e.url AS endpoint_url, d.status,
  d.attempt_count, d.next_attempt_at, d.give_up_at, d.last_status_code, d.last_error, d.last_response_ms,
  d.replay_of, d.created_at, d.updated_at, d.completed_at`;
const deliveryFrom = `webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id
  JOIN webhook_endpoints e ON e.id = d.endpoint_id`;

const toDelivery = (row: DeliveryRow): WebhookDelivery => ({
  id: row.id,
  eventId: row.event_id,
  eventType: row.event_type,
  endpointId: row.endpoint_id,
  endpointUrl: row.endpoint_url,
  status: row.status,
  attemptCount: row.attempt_count,
  nextAttemptAt: row.next_attempt_at,
  giveUpAt: row.give_up_at,
  lastStatusCode: row.last_status_code,
  lastError: row.last_error,
  lastResponseMs: row.last_response_ms,
  replayOf: row.replay_of,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  completedAt: row.completed_at,
});

/** The team's deliveries, newest first. */
export async function listWebhookDeliveries(
  db: Queryable,
  input: { teamId: string; status?: DeliveryStatus; endpointId?: string; eventId?: string; limit?: number },
): Promise<WebhookDelivery[]> {
  const result = await db.query<DeliveryRow>(
    `SELECT ${deliveryColumns} FROM ${deliveryFrom}
     WHERE d.team_id = $1 AND ($2::text IS NULL OR d.status = $2) AND ($3::uuid IS NULL OR d.endpoint_id = $3)
       AND ($4::uuid IS NULL OR d.event_id = $4)
     ORDER BY d.created_at DESC, d.id LIMIT $5`,
    [input.teamId, input.status ?? null, input.endpointId ?? null, input.eventId ?? null, input.limit ?? 50],
  );
  return result.rows.map(toDelivery);
}

/** A delivery of the team with its attempts, oldest attempt first. */
export async function findWebhookDelivery(
  db: Queryable,
  input: { teamId: string; deliveryId: string },
): Promise<{ delivery: WebhookDelivery; attempts: WebhookAttempt[] } | undefined> {
  if (!isUuid(input.deliveryId)) return undefined;
  const result = await db.query<DeliveryRow>(
    `SELECT ${deliveryColumns} FROM ${deliveryFrom} WHERE d.team_id = $1 AND d.id = $2`,
    [input.teamId, input.deliveryId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  const attempts = await db.query<{
    attempted_at: Date;
    status_code: number | null;
    error: string | null;
    duration_ms: number;
    response_body: string | null;
  }>(
    'SELECT attempted_at, status_code, error, duration_ms, response_body FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id',
    [row.id],
  );
  return {
    delivery: toDelivery(row),
    attempts: attempts.rows.map((attempt) => ({
      attemptedAt: attempt.attempted_at,
      statusCode: attempt.status_code,
      error: attempt.error,
      durationMs: attempt.duration_ms,
      responseBody: attempt.response_body,
    })),
  };
}

/** Sends a delivery's event to its endpoint again: a new delivery, due now. */
export async function replayWebhookDelivery(
  tx: Queryable,
  input: { teamId: string; deliveryId: string },
): Promise<string | undefined> {
  if (!isUuid(input.deliveryId)) return undefined;
  const found = await tx.query<{ event_id: string; endpoint_id: string }>(
    'SELECT event_id, endpoint_id FROM webhook_deliveries WHERE team_id = $1 AND id = $2',
    [input.teamId, input.deliveryId],
  );
  const row = found.rows[0];
  if (!row) return undefined;
  return insertDelivery(tx, {
    eventId: row.event_id,
    endpointId: row.endpoint_id,
    teamId: input.teamId,
    replayOf: input.deliveryId,
  });
}

/**
 * Sends an event again to every endpoint it was delivered to that still exists: one new delivery each.
 * Undefined when the team has no such event.
 */
export async function replayWebhookEvent(
  tx: Queryable,
  input: { teamId: string; eventId: string },
): Promise<string[] | undefined> {
  if (!isUuid(input.eventId)) return undefined;
  const event = await tx.query('SELECT 1 FROM webhook_events WHERE team_id = $1 AND id = $2', [
    input.teamId,
    input.eventId,
  ]);
  if (event.rowCount === 0) return undefined;
  const endpoints = await tx.query<{ endpoint_id: string }>(
    'SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE event_id = $1 ORDER BY endpoint_id',
    [input.eventId],
  );
  const ids: string[] = [];
  for (const row of endpoints.rows) {
    ids.push(await insertDelivery(tx, { eventId: input.eventId, endpointId: row.endpoint_id, teamId: input.teamId }));
  }
  return ids;
}
