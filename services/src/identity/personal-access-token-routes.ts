import { z } from 'zod';
import { appendAuditEntry, userLabel } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import type { Database } from '../storage/database.js';
import { authenticate, authenticateSession, clientOf } from './authenticate.js';
import {
  createPersonalAccessToken,
  defaultTokenLifetimeDays,
  listPersonalAccessTokens,
  maxLiveTokensPerUser,
  maxTokenLifetimeDays,
  type PersonalAccessTokenSummary,
  revokePersonalAccessToken,
  tokenExpiry,
} from './personal-access-tokens.js';

export interface PersonalAccessTokenRouteOptions {
  database: Database;
  /** HS256 key for access tokens, derived from the master key. */
  signingKey: Buffer;
}

const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe('`tgpat_` and the first 6 characters of the secret, to recognise the token'),
  created_at: z.string(),
  expires_at: z.string().nullable().describe('null: never expires'),
  expired: z.boolean(),
  last_used_at: z.string().nullable().describe('to the minute: recorded at most once a minute'),
  last_used_ip: z.string().nullable(),
  current: z.boolean().describe('whether this request was made with this token'),
});

function tokenBody(
  token: PersonalAccessTokenSummary,
  currentTokenId: string | undefined,
  now: Date,
): z.infer<typeof tokenSchema> {
  return {
    id: token.id,
    name: token.name,
    prefix: token.displayPrefix,
    created_at: token.createdAt.toISOString(),
    expires_at: token.expiresAt?.toISOString() ?? null,
    expired: token.expiresAt !== null && token.expiresAt.getTime() <= now.getTime(),
    last_used_at: token.lastUsedAt?.toISOString() ?? null,
    last_used_ip: token.lastUsedIp,
    current: token.id === currentTokenId,
  };
}

/** Names are shown in tables and terminals: no control characters (newlines, escape sequences). */
const nameSchema = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^\P{Cc}*$/u, { error: 'must not contain control characters' });

const notFound = () => new TollgateError('not_found', 'no such personal access token');

/** Personal access tokens of the signed-in account: make one (with a session), list them, revoke one. */
export function personalAccessTokenRoutes(options: PersonalAccessTokenRouteOptions) {
  const { database, signingKey } = options;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/me/tokens',
      operationId: 'createPersonalAccessToken',
      summary: 'Make a personal access token (shown once)',
      description:
        `Needs a session: a request made with a personal access token is refused with 403 \`session_required\`, so a leaked token cannot mint more. ` +
        `\`expires_in_days\` is 1 to ${maxTokenLifetimeDays}, \`null\` for a token that never expires, ${defaultTokenLifetimeDays} when absent. ` +
        `At most ${maxLiveTokensPerUser} live tokens per account (409 \`token_limit_reached\`). The answer holds the token, \`tgpat_...\`, this once: only its SHA-256 is stored.`,
      tags: ['auth'],
      body: z.object({
        name: nameSchema,
        expires_in_days: z.number().int().min(1).max(maxTokenLifetimeDays).nullable().optional(),
      }),
      responses: {
        201: {
          description: 'The token, with its secret this once',
          schema: tokenSchema.extend({ token: z.string().describe('Shown this once; send it as Bearer') }),
        },
      },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(
          ctx,
          { database, signingKey },
          {
            action: 'creating personal access tokens',
          },
        );
        const client = clientOf(ctx);
        const now = new Date();
        const created = await database.transaction(async (tx) => {
          const made = await createPersonalAccessToken(tx, {
            userId: caller.user.id,
            name: body.name,
            expiresAt: tokenExpiry(body.expires_in_days, now),
            now,
          });
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'user.token_created',
            outcome: 'success',
            targetType: 'personal_access_token',
            targetId: made.summary.id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
            details: {
              name: made.summary.name,
              prefix: made.summary.displayPrefix,
              expires_at: made.summary.expiresAt?.toISOString() ?? null,
            },
          });
          return made;
        });
        ctx.set('Cache-Control', 'no-store');
        ctx.status = 201;
        ctx.body = { ...tokenBody(created.summary, undefined, now), token: created.token };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/me/tokens',
      operationId: 'listPersonalAccessTokens',
      summary: "The signed-in account's personal access tokens (never their secrets)",
      description: 'Every token not revoked, newest first; expired ones too, marked `expired`.',
      tags: ['auth'],
      responses: {
        200: { description: 'Tokens, newest first', schema: z.object({ tokens: z.array(tokenSchema) }) },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const now = new Date();
        const tokens = await listPersonalAccessTokens(database, caller.user.id);
        const current = caller.via === 'token' ? caller.tokenId : undefined;
        ctx.body = { tokens: tokens.map((token) => tokenBody(token, current, now)) };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/me/tokens/:id',
      operationId: 'revokePersonalAccessToken',
      summary: 'Revoke one of your personal access tokens',
      description:
        'It stops working at once. A session or any of your tokens (the one being revoked included) may revoke. ' +
        'An id that is not one of your live tokens is 404 `not_found`.',
      tags: ['auth'],
      responses: { 204: { description: 'Revoked' } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const id = (ctx as unknown as { params: Record<string, string> }).params.id ?? '';
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw notFound();
        const client = clientOf(ctx);
        await database.transaction(async (tx) => {
          const revoked = await revokePersonalAccessToken(tx, { userId: caller.user.id, tokenId: id });
          if (!revoked) throw notFound();
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'user.token_revoked',
            outcome: 'success',
            targetType: 'personal_access_token',
            targetId: id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
            details: { name: revoked.name, prefix: revoked.displayPrefix, via: caller.via },
          });
        });
        ctx.status = 204;
      },
    }),
  ];
}
