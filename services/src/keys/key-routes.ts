import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { callerAudit } from '../identity/authenticate.js';
import type { Logger } from '../logging/logger.js';
import type { Database } from '../storage/database.js';
import { teamAccess } from '../teams/team-routes.js';
import {
  type ApiKeySummary,
  createApiKey,
  findApiKey,
  keyMethods,
  limitsFromJson,
  listApiKeys,
  resolveApiRefs,
  revokeApiKey,
  rotateApiKey,
} from './api-keys.js';
import { cidrText, parseCidr } from './cidr.js';
import { parseDuration } from './duration.js';
import type { KeyEvents } from './key-events.js';

export interface KeyRouteOptions {
  database: Database;
  signingKey: Buffer;
  /** Where revocations and rotations are announced to the gateways. */
  keyEvents: KeyEvents;
  logger: Logger;
}

const day = 86_400_000;
/** The longest a key can be created to live, and the longest rotation grace. */
export const maxKeyLifetimeMs = 3650 * day;
export const maxRotationGraceMs = 30 * day;
export const defaultRotationGraceMs = day;

const durationText = (max: number, what: string) =>
  z
    .string()
    .max(20)
    .refine(
      (text) => {
        const ms = parseDuration(text);
        return ms !== undefined && ms <= max;
      },
      `${what}: a whole number with s, m, h or d (e.g. 90d, 24h), at most ${max / day}d`,
    );

const limit = z.number().int().positive().max(1_000_000_000);
const limitsSchema = z
  .strictObject({
    per_second: limit.optional(),
    per_minute: limit.optional(),
    per_hour: limit.optional(),
    per_day: limit.optional(),
  })
  .describe('Per-key rate-limit overrides in calls per window; an absent window keeps the plan limit');

const createBody = z.object({
  name: z
    .string()
    .trim()
    .max(200)
    .regex(/^\P{Cc}*$/u, { error: 'must not contain control characters' })
    .optional(),
  mode: z.enum(['live', 'test']).default('live').describe('test keys look like tg_test_...'),
  apis: z
    .array(z.string().min(1).max(100))
    .max(50)
    .default([])
    .describe('Slugs or ids of the APIs the key may call; empty: every API'),
  methods: z
    .array(
      z.string().refine((method) => (keyMethods as readonly string[]).includes(method.toUpperCase()), {
        error: `must be one of ${keyMethods.join(', ')}`,
      }),
    )
    .max(keyMethods.length * 2)
    .default([])
    .describe('HTTP methods the key may use; empty: every method'),
  allowed_cidrs: z
    .array(
      z
        .string()
        .max(100)
        .superRefine((text, ctx) => {
          const parsed = parseCidr(text);
          if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem });
        }),
    )
    .max(100)
    .default([])
    .describe('IPv4/IPv6 networks (CIDR) the key may be used from; empty: anywhere'),
  expires_in: durationText(maxKeyLifetimeMs, 'expires_in')
    .refine((text) => (parseDuration(text) ?? 0) > 0, 'expires_in must be longer than 0')
    .optional()
    .describe('e.g. 90d; the key never expires without it'),
  limits: limitsSchema.optional(),
  team_owned: z.boolean().default(false).describe('Owned by the team alone rather than by you'),
});

const rotateBody = z.object({
  grace: durationText(maxRotationGraceMs, 'grace')
    .default('24h')
    .describe('How long the previous secret keeps working: e.g. 24h, 30m, or 0 for not at all'),
});

const keySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string().describe('tg_<mode>_<id>: the part of the key that is not secret'),
  mode: z.enum(['live', 'test']),
  owner_user_id: z.string().nullable().describe('null: owned by the team'),
  apis: z.array(z.object({ id: z.string(), slug: z.string() })).describe('empty: every API'),
  methods: z.array(z.string()).describe('empty: every method'),
  allowed_cidrs: z.array(z.string()).describe('empty: anywhere'),
  limits: z.record(z.string(), z.number()),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  expired: z.boolean(),
  revoked_at: z.string().nullable(),
  rotated_at: z.string().nullable(),
  previous_secret_expires_at: z.string().nullable().describe('the previous secret works until then'),
  last_used_at: z.string().nullable().describe('recorded by the gateways at most once a minute'),
});

export function keyBody(key: ApiKeySummary, now = new Date()): z.infer<typeof keySchema> {
  const previousLive = key.previousSecretExpiresAt && key.previousSecretExpiresAt > now;
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    mode: key.mode,
    owner_user_id: key.ownerUserId,
    apis: key.apis,
    methods: key.methods,
    allowed_cidrs: key.allowedCidrs,
    limits: { ...key.limits },
    created_at: key.createdAt.toISOString(),
    expires_at: key.expiresAt?.toISOString() ?? null,
    expired: key.expiresAt !== null && key.expiresAt <= now,
    revoked_at: key.revokedAt?.toISOString() ?? null,
    rotated_at: key.rotatedAt?.toISOString() ?? null,
    previous_secret_expires_at: previousLive ? (key.previousSecretExpiresAt?.toISOString() ?? null) : null,
    last_used_at: key.lastUsedAt?.toISOString() ?? null,
  };
}

const keyParam = (ctx: Context) => (ctx as unknown as { params: Record<string, string> }).params.key ?? '';

/** The team's API keys: `/v1/teams/:team/keys` (keys:read, keys:write). */
export function keyRoutes(options: KeyRouteOptions) {
  const { database, keyEvents } = options;
  const logger = options.logger.child({ component: 'keys' });

  /** After the commit: a gateway must never reload the key before the change is visible. */
  const announce = async (lookupId: string) => {
    try {
      await keyEvents.publishInvalidation(lookupId);
    } catch (error) {
      // The change is committed; gateways drop their cached copy when its TTL runs out instead.
      logger.warn({ err: error, lookupId }, 'could not announce a key change to the gateways');
    }
  };

  return [
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/keys',
      operationId: 'createApiKey',
      summary: 'Create an API key (keys:write); the key is shown once',
      description:
        'Owned by you unless team_owned. apis, methods and allowed_cidrs limit where the key works (empty: no limit); limits override the plan rate limits for this key.',
      tags: ['keys'],
      body: createBody,
      responses: {
        201: { description: 'Created', schema: keySchema.extend({ key: z.string().describe('Shown only now') }) },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'keys:write');
        const { ids: apiIds, unknown } = await resolveApiRefs(database, body.apis);
        if (unknown.length > 0) {
          throw new TollgateError('validation_failed', `apis: no API named ${unknown.join(', ')}`, {
            details: { field: 'apis', unknown },
            hint: 'list the APIs with `tollgate apis list`',
          });
        }
        const expiresInMs = body.expires_in === undefined ? undefined : parseDuration(body.expires_in);
        const methods = [
          ...new Set(body.methods.map((method) => method.toUpperCase())),
        ] as (typeof keyMethods)[number][];
        const allowedCidrs = body.allowed_cidrs.map((text) => {
          const parsed = parseCidr(text);
          return parsed.ok ? cidrText(parsed.cidr) : text;
        });
        const created = await database.transaction(async (tx) => {
          const result = await createApiKey(tx, {
            teamId: team.id,
            mode: body.mode,
            ...(body.team_owned ? {} : { ownerUserId: caller.user.id }),
            ...(body.name ? { name: body.name } : {}),
            apiIds,
            methods,
            allowedCidrs,
            limits: limitsFromJson(body.limits ?? {}),
            ...(expiresInMs === undefined ? {} : { expiresAt: new Date(Date.now() + expiresInMs) }),
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'key.created',
              outcome: 'success',
              targetType: 'api_key',
              targetId: result.summary.id,
              teamId: team.id,
              details: {
                prefix: result.summary.prefix,
                mode: result.summary.mode,
                owner_user_id: result.summary.ownerUserId,
                api_ids: apiIds,
                methods,
                allowed_cidrs: allowedCidrs,
                limits: result.summary.limits,
                expires_at: result.summary.expiresAt,
              },
            }),
          );
          return result;
        });
        ctx.status = 201;
        ctx.body = { ...keyBody(created.summary), key: created.key };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/keys',
      operationId: 'listApiKeys',
      summary: "The team's API keys, revoked ones included, never their secrets (keys:read)",
      tags: ['keys'],
      responses: { 200: { description: 'Keys', schema: z.object({ keys: z.array(keySchema) }) } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'keys:read');
        const now = new Date();
        ctx.body = { keys: (await listApiKeys(database, team.id)).map((key) => keyBody(key, now)) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/keys/:key',
      operationId: 'getApiKey',
      summary: 'One API key by id or prefix (tg_live_<id>), never its secret (keys:read)',
      tags: ['keys'],
      responses: { 200: { description: 'The key', schema: keySchema } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'keys:read');
        const key = await findApiKey(database, { teamId: team.id, keyId: keyParam(ctx) });
        if (!key) throw new TollgateError('not_found', 'no such key');
        ctx.body = keyBody(key);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/keys/:key/rotate',
      operationId: 'rotateApiKey',
      summary: 'Give a key a new secret, shown once; the old one works for the grace period (keys:write)',
      description:
        'The prefix stays. grace (default 24h, at most 30d) is how long the previous secret keeps working; 0 stops it at once. A secret from before an earlier rotation stops at once.',
      tags: ['keys'],
      body: rotateBody,
      responses: {
        200: { description: 'Rotated', schema: keySchema.extend({ key: z.string().describe('Shown only now') }) },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'keys:write');
        const graceMs = parseDuration(body.grace) ?? defaultRotationGraceMs;
        const rotated = await database.transaction(async (tx) => {
          const result = await rotateApiKey(tx, { teamId: team.id, keyId: keyParam(ctx), graceMs });
          if (result) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'key.rotated',
                outcome: 'success',
                targetType: 'api_key',
                targetId: result.summary.id,
                teamId: team.id,
                details: { prefix: result.summary.prefix, grace_seconds: graceMs / 1000 },
              }),
            );
          }
          return result;
        });
        if (!rotated) throw new TollgateError('not_found', 'no such live key');
        await announce(rotated.lookupId);
        ctx.body = { ...keyBody(rotated.summary), key: rotated.key };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/teams/:team/keys/:key',
      operationId: 'revokeApiKey',
      summary: 'Revoke an API key (keys:write); every gateway refuses it within a second',
      tags: ['keys'],
      responses: { 204: { description: 'Revoked' } },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'keys:write');
        const revoked = await database.transaction(async (tx) => {
          const result = await revokeApiKey(tx, { teamId: team.id, keyId: keyParam(ctx) });
          if (result) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'key.revoked',
                outcome: 'success',
                targetType: 'api_key',
                targetId: result.id,
                teamId: team.id,
              }),
            );
          }
          return result;
        });
        if (!revoked) throw new TollgateError('not_found', 'no such live key');
        await announce(revoked.lookupId);
        ctx.status = 204;
      },
    }),
  ];
}
