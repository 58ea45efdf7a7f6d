import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { callerAudit } from '../identity/authenticate.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import type { Database } from '../storage/database.js';
import { teamAccess } from '../teams/team-routes.js';
import { checkEndpointUrl } from './endpoint-url.js';
import { webhookEventTypes } from './webhook-events.js';
import {
  createWebhookEndpoint,
  type DeliveryStatus,
  deleteWebhookEndpoint,
  deliveryStatuses,
  enqueuePing,
  findWebhookDelivery,
  findWebhookEndpoint,
  isUuid,
  listWebhookDeliveries,
  listWebhookEndpoints,
  replayWebhookDelivery,
  replayWebhookEvent,
  type WebhookAttempt,
  type WebhookDelivery,
  type WebhookEndpoint,
} from './webhook-store.js';

export interface WebhookRouteOptions {
  database: Database;
  signingKey: Buffer;
  keyring: MasterKeyring;
  /** TOLLGATE_WEBHOOKS_ALLOW_PRIVATE: endpoints may be on private and loopback addresses. */
  allowPrivate: boolean;
}

const createBody = z.object({
  url: z.string().trim().min(1).max(2048).describe('http:// or https:// URL the events are POSTed to'),
  events: z
    .array(z.enum(webhookEventTypes))
    .min(1)
    .max(webhookEventTypes.length * 2)
    .describe('The event types to send to it'),
  description: z
    .string()
    .trim()
    .max(500)
    .regex(/^\P{Cc}*$/u, { error: 'must not contain control characters' })
    .optional(),
});

const endpointSchema = z.object({
  id: z.string(),
  url: z.string(),
  description: z.string().nullable(),
  events: z.array(z.string()),
  enabled: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

const deliverySchema = z.object({
  id: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  endpoint_id: z.string(),
  endpoint_url: z.string(),
  status: z.enum(deliveryStatuses),
  attempt_count: z.number(),
  next_attempt_at: z.string().nullable().describe('null once succeeded or exhausted'),
  give_up_at: z.string().describe('no attempt is made after this: 3 days after the event or the replay'),
  last_status_code: z.number().nullable(),
  last_error: z.string().nullable(),
  last_response_ms: z.number().nullable(),
  replay_of: z.string().nullable(),
  created_at: z.string(),
  completed_at: z.string().nullable(),
});

const attemptSchema = z.object({
  attempted_at: z.string(),
  status_code: z.number().nullable().describe('null: no HTTP answer (connection error, timeout, refused address)'),
  error: z.string().nullable(),
  duration_ms: z.number(),
  response_body: z.string().nullable().describe('the first 2 KiB of the answer'),
});

const endpointBody = (endpoint: WebhookEndpoint): z.infer<typeof endpointSchema> => ({
  id: endpoint.id,
  url: endpoint.url,
  description: endpoint.description,
  events: endpoint.eventTypes,
  enabled: endpoint.enabled,
  created_at: endpoint.createdAt.toISOString(),
  updated_at: endpoint.updatedAt.toISOString(),
});

const deliveryBody = (delivery: WebhookDelivery): z.infer<typeof deliverySchema> => ({
  id: delivery.id,
  event_id: delivery.eventId,
  event_type: delivery.eventType,
  endpoint_id: delivery.endpointId,
  endpoint_url: delivery.endpointUrl,
  status: delivery.status,
  attempt_count: delivery.attemptCount,
  next_attempt_at: delivery.nextAttemptAt?.toISOString() ?? null,
  give_up_at: delivery.giveUpAt.toISOString(),
  last_status_code: delivery.lastStatusCode,
  last_error: delivery.lastError,
  last_response_ms: delivery.lastResponseMs,
  replay_of: delivery.replayOf,
  created_at: delivery.createdAt.toISOString(),
  completed_at: delivery.completedAt?.toISOString() ?? null,
});

const attemptBody = (attempt: WebhookAttempt): z.infer<typeof attemptSchema> => ({
  attempted_at: attempt.attemptedAt.toISOString(),
  status_code: attempt.statusCode,
  error: attempt.error,
  duration_ms: attempt.durationMs,
  response_body: attempt.responseBody,
});

const param = (ctx: Context, name: string) => (ctx as unknown as { params: Record<string, string> }).params[name] ?? '';

function deliveryFilters(ctx: Context): { status?: DeliveryStatus; endpointId?: string; limit: number } {
  const query = ctx.query as Record<string, string | undefined>;
  const filters: { status?: DeliveryStatus; endpointId?: string; limit: number } = { limit: 50 };
  if (query.status !== undefined) {
    if (!(deliveryStatuses as readonly string[]).includes(query.status)) {
      throw new TollgateError('validation_failed', `status: must be one of ${deliveryStatuses.join(', ')}`);
    }
    filters.status = query.status as DeliveryStatus;
  }
  if (query.endpoint !== undefined) {
    if (!isUuid(query.endpoint)) throw new TollgateError('validation_failed', 'endpoint: must be an endpoint id');
    filters.endpointId = query.endpoint;
  }
  if (query.limit !== undefined) {
    const limit = Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
      throw new TollgateError('validation_failed', 'limit: a whole number from 1 to 200');
    }
    filters.limit = limit;
  }
  return filters;
}

/** A team's outgoing webhooks: `/v1/teams/:team/webhooks...` (webhooks:read, webhooks:write). */
export function webhookRoutes(options: WebhookRouteOptions) {
  const { database, keyring } = options;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/webhooks',
      operationId: 'createWebhookEndpoint',
      summary: 'Add a webhook endpoint (webhooks:write); its signing secret is shown once',
      description:
        'The URL must be http(s) and, unless the operator set TOLLGATE_WEBHOOKS_ALLOW_PRIVATE, not on a private or loopback address. Each delivery is signed with the secret: see docs/webhooks.md.',
      tags: ['webhooks'],
      body: createBody,
      responses: {
        201: {
          description: 'Created',
          schema: endpointSchema.extend({ secret: z.string().describe('whsec_...: shown only now') }),
        },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'webhooks:write');
        const url = await checkEndpointUrl(body.url, { allowPrivate: options.allowPrivate });
        const created = await database.transaction(async (tx) => {
          const result = await createWebhookEndpoint(tx, keyring, {
            teamId: team.id,
            url: url.toString(),
            eventTypes: body.events,
            ...(body.description ? { description: body.description } : {}),
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'webhook_endpoint.created',
              outcome: 'success',
              targetType: 'webhook_endpoint',
              targetId: result.endpoint.id,
              teamId: team.id,
              details: { url: result.endpoint.url, events: result.endpoint.eventTypes },
            }),
          );
          return result;
        });
        ctx.status = 201;
        ctx.body = { ...endpointBody(created.endpoint), secret: created.secret };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/webhooks',
      operationId: 'listWebhookEndpoints',
      summary: "The team's webhook endpoints, never their secrets (webhooks:read)",
      tags: ['webhooks'],
      responses: { 200: { description: 'Endpoints', schema: z.object({ endpoints: z.array(endpointSchema) }) } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'webhooks:read');
        ctx.body = { endpoints: (await listWebhookEndpoints(database, team.id)).map(endpointBody) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/webhooks/:endpoint',
      operationId: 'getWebhookEndpoint',
      summary: 'One webhook endpoint, never its secret (webhooks:read)',
      tags: ['webhooks'],
      responses: { 200: { description: 'The endpoint', schema: endpointSchema } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'webhooks:read');
        const endpoint = await findWebhookEndpoint(database, { teamId: team.id, endpointId: param(ctx, 'endpoint') });
        if (!endpoint) throw new TollgateError('not_found', 'no such webhook endpoint');
        ctx.body = endpointBody(endpoint);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/teams/:team/webhooks/:endpoint',
      operationId: 'deleteWebhookEndpoint',
      summary: 'Remove a webhook endpoint with its deliveries (webhooks:write)',
      tags: ['webhooks'],
      responses: { 204: { description: 'Removed' } },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'webhooks:write');
        const removed = await database.transaction(async (tx) => {
          const result = await deleteWebhookEndpoint(tx, { teamId: team.id, endpointId: param(ctx, 'endpoint') });
          if (result) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'webhook_endpoint.deleted',
                outcome: 'success',
                targetType: 'webhook_endpoint',
                targetId: result.id,
                teamId: team.id,
                details: { url: result.url },
              }),
            );
          }
          return result;
        });
        if (!removed) throw new TollgateError('not_found', 'no such webhook endpoint');
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/webhooks/:endpoint/test',
      operationId: 'testWebhookEndpoint',
      summary: 'Send a ping event to one endpoint (webhooks:write)',
      description: 'Queued like any event; the worker sends it within a second. Follow it with the delivery id.',
      tags: ['webhooks'],
      responses: {
        202: { description: 'Queued', schema: z.object({ event_id: z.string(), delivery_id: z.string() }) },
      },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'webhooks:write');
        const queued = await database.transaction(async (tx) => {
          const endpoint = await findWebhookEndpoint(tx, { teamId: team.id, endpointId: param(ctx, 'endpoint') });
          if (!endpoint) return undefined;
          const result = await enqueuePing(tx, { endpoint });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'webhook_endpoint.tested',
              outcome: 'success',
              targetType: 'webhook_endpoint',
              targetId: endpoint.id,
              teamId: team.id,
              details: { event_id: result.eventId, delivery_id: result.deliveryId },
            }),
          );
          return result;
        });
        if (!queued) throw new TollgateError('not_found', 'no such webhook endpoint');
        ctx.status = 202;
        ctx.body = { event_id: queued.eventId, delivery_id: queued.deliveryId };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/webhook-deliveries',
      operationId: 'listWebhookDeliveries',
      summary: "The team's webhook deliveries, newest first (webhooks:read)",
      description:
        'Query: status (pending, succeeded, failed, exhausted), endpoint (an endpoint id), limit (1-200, default 50).',
      tags: ['webhooks'],
      responses: { 200: { description: 'Deliveries', schema: z.object({ deliveries: z.array(deliverySchema) }) } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'webhooks:read');
        const deliveries = await listWebhookDeliveries(database, { teamId: team.id, ...deliveryFilters(ctx) });
        ctx.body = { deliveries: deliveries.map(deliveryBody) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/webhook-deliveries/:delivery',
      operationId: 'getWebhookDelivery',
      summary: 'One delivery with each of its HTTP attempts (webhooks:read)',
      tags: ['webhooks'],
      responses: {
        200: { description: 'The delivery', schema: deliverySchema.extend({ attempts: z.array(attemptSchema) }) },
      },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'webhooks:read');
        const found = await findWebhookDelivery(database, { teamId: team.id, deliveryId: param(ctx, 'delivery') });
        if (!found) throw new TollgateError('not_found', 'no such webhook delivery');
        ctx.body = { ...deliveryBody(found.delivery), attempts: found.attempts.map(attemptBody) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/webhook-deliveries/:delivery/replay',
      operationId: 'replayWebhookDelivery',
      summary: "Send a delivery's event to its endpoint again, as a new delivery (webhooks:write)",
      tags: ['webhooks'],
      responses: { 202: { description: 'Queued', schema: deliverySchema } },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'webhooks:write');
        const deliveryId = param(ctx, 'delivery');
        const replayed = await database.transaction(async (tx) => {
          const id = await replayWebhookDelivery(tx, { teamId: team.id, deliveryId });
          if (!id) return undefined;
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'webhook_delivery.replayed',
              outcome: 'success',
              targetType: 'webhook_delivery',
              targetId: deliveryId,
              teamId: team.id,
              details: { delivery_id: id },
            }),
          );
          return (await findWebhookDelivery(tx, { teamId: team.id, deliveryId: id }))?.delivery;
        });
        if (!replayed) throw new TollgateError('not_found', 'no such webhook delivery');
        ctx.status = 202;
        ctx.body = deliveryBody(replayed);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/webhook-events/:event/replay',
      operationId: 'replayWebhookEvent',
      summary: 'Send an event again to every endpoint it went to that still exists (webhooks:write)',
      tags: ['webhooks'],
      responses: { 202: { description: 'Queued', schema: z.object({ deliveries: z.array(deliverySchema) }) } },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'webhooks:write');
        const eventId = param(ctx, 'event');
        const replayed = await database.transaction(async (tx) => {
          const ids = await replayWebhookEvent(tx, { teamId: team.id, eventId });
          if (!ids) return undefined;
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'webhook_event.replayed',
              outcome: 'success',
              targetType: 'webhook_event',
              targetId: eventId,
              teamId: team.id,
              details: { delivery_ids: ids },
            }),
          );
          return listWebhookDeliveries(tx, { teamId: team.id, eventId, limit: 200 }).then((all) =>
            all.filter((delivery) => ids.includes(delivery.id)),
          );
        });
        if (!replayed) throw new TollgateError('not_found', 'no such webhook event');
        ctx.status = 202;
        ctx.body = { deliveries: replayed.map(deliveryBody) };
      },
    }),
  ];
}
