import type { Queryable } from '../storage/database.js';

/** The events a team's endpoint can subscribe to (docs/webhooks.md describes each payload). */
export const webhookEventTypes = [
  'invoice.finalized',
  'invoice.paid',
  'invoice.voided',
  'quota.threshold_reached',
  'quota.exhausted',
  'subscription.updated',
  'key.rotated',
] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

/** Sent by `POST /v1/teams/:team/webhooks/:endpoint/test` to that one endpoint; nobody subscribes to it. */
export const pingEventType = 'ping';

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (webhookEventTypes as readonly string[]).includes(value);
}

/** Deliveries are tried until this long after the event (or the replay) was created. */
export const deliveryWindowMs = 3 * 86_400_000;

export interface EnqueuedEvent {
  eventId: string;
  /** One per enabled endpoint of the team subscribed to the type; empty when none is. */
  deliveryIds: string[];
}

/**
 * Records that `type` happened to a team and queues one delivery per enabled endpoint subscribed to
 * it. Call it with the transaction of the change itself: the event then commits with the change, or
 * rolls back with it, and the delivery job sends only committed events. `data` must never hold a
 * secret: it is sent to every subscribed URL as is.
 */
export async function enqueueTeamEvent(
  tx: Queryable,
  input: { teamId: string; type: WebhookEventType; data: Record<string, unknown> },
): Promise<EnqueuedEvent> {
  const event = await tx.query<{ id: string }>(
    'INSERT INTO webhook_events (team_id, type, payload) VALUES ($1, $2, $3::jsonb) RETURNING id',
    [input.teamId, input.type, JSON.stringify(input.data)],
  );
  const eventId = (event.rows[0] as { id: string }).id;
  const deliveries = await tx.query<{ id: string }>(
    `INSERT INTO webhook_deliveries (event_id, endpoint_id, team_id, next_attempt_at, give_up_at)
     SELECT $1, e.id, e.team_id, ev.created_at, ev.created_at + make_interval(secs => $3)
     FROM webhook_endpoints e, webhook_events ev
     WHERE ev.id = $1 AND e.team_id = $2 AND e.enabled AND $4 = ANY (e.event_types)
     RETURNING id`,
    [eventId, input.teamId, deliveryWindowMs / 1000, input.type],
  );
  return { eventId, deliveryIds: deliveries.rows.map((row) => row.id) };
}
