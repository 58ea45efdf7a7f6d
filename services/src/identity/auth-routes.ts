import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry, emailPseudonym, recordAudit, userLabel } from '../audit/index.js';
import type { CounterStore } from '../counters/counter-store.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import type { Database, Queryable } from '../storage/database.js';
import { clearLoginFailures, guardLogin, recordLoginFailure } from './abuse-limits.js';
import { authenticate, authenticateSession, clientOf, requestAudit } from './authenticate.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { RefreshTokenStore } from './refresh-token-store.js';
import {
  createSession,
  listActiveSessions,
  refreshSession,
  revokeAllSessions,
  revokeSession,
  type SessionTokens,
} from './sessions.js';
import { issueLoginChallenge, loadTwoFactorSettings, loginMethods } from './two-factor-store.js';
import { userBody, userSchema } from './user-body.js';
import { findLoginByEmail, findUserById, type User } from './users.js';

export interface AuthRouteOptions {
  database: Database;
  /** HS256 key for access tokens, derived from the master key. */
  signingKey: Buffer;
  /** Key of the email pseudonyms in audit entries (emailPseudonym). */
  auditKey: Buffer;
  /** With it, login attempts count against the abuse limits (abuse-limits.ts). */
  counters?: CounterStore;
  /** Where refresh tokens live: Redis when configured, else PostgreSQL. */
  refreshTokens: RefreshTokenStore;
}

/** The body of every answer that opens a session (also the second login step's, two-factor-routes.ts). */
export const tokensSchema = z.object({
  token_type: z.literal('Bearer'),
  access_token: z.string(),
  expires_in: z.number().int().describe('Seconds until the access token expires'),
  refresh_token: z.string().describe('Single use: each refresh returns a new one'),
  session_id: z.string(),
  session_expires_at: z.string(),
  user: userSchema,
});

export function tokensBody(tokens: SessionTokens, user: User): z.infer<typeof tokensSchema> {
  return {
    token_type: 'Bearer',
    access_token: tokens.accessToken,
    expires_in: tokens.accessTokenExpiresIn,
    refresh_token: tokens.refreshToken,
    session_id: tokens.sessionId,
    session_expires_at: tokens.sessionExpiresAt.toISOString(),
    user: userBody(user),
  };
}

export const twoFactorRequiredSchema = z.object({
  two_factor_required: z.literal(true),
  challenge: z
    .string()
    .describe('Single use, for 5 minutes: send it with a code to POST /v1/auth/login/2fa. Not a session.'),
  challenge_expires_at: z.string(),
  methods: z
    .array(z.enum(['totp', 'recovery_code', 'email', 'sms']))
    .describe(
      'The second factors that can complete this login; for `email` or `sms`, POST /v1/auth/login/2fa/email or ' +
        '/v1/auth/login/2fa/sms first',
    ),
});

/**
 * What a proven first factor (a password, a login provider) leads to: a two-factor challenge when
 * the account has a second factor, else a session; audited either way (`details` goes into both
 * entries). Call inside the login's transaction.
 */
export async function completeFirstFactor(
  tx: Queryable,
  ctx: Context,
  input: { user: User; signingKey: Buffer; refreshTokens: RefreshTokenStore; details?: Record<string, unknown> },
): Promise<z.infer<typeof tokensSchema> | z.infer<typeof twoFactorRequiredSchema>> {
  const { user, details } = input;
  const actor = { actorUserId: user.id, actorLabel: userLabel(user.id), ...requestAudit(ctx) };
  const methods = loginMethods(await loadTwoFactorSettings(tx, user.id));
  if (methods.length > 0) {
    // Proven, but no session yet: the challenge carries that proof to the second step. Recorded
    // apart from auth.login: a right password never followed by a second factor is how an owner
    // learns that someone else knows it.
    const issued = await issueLoginChallenge(tx, user.id);
    await appendAuditEntry(tx, {
      ...actor,
      action: 'auth.two_factor_challenge_issued',
      outcome: 'success',
      targetType: 'user',
      targetId: user.id,
      details: { ...details, methods },
    });
    return {
      two_factor_required: true,
      challenge: issued.challenge,
      challenge_expires_at: issued.expiresAt.toISOString(),
      methods,
    };
  }
  const tokens = await createSession(tx, {
    userId: user.id,
    client: clientOf(ctx),
    signingKey: input.signingKey,
    refreshTokens: input.refreshTokens,
  });
  await appendAuditEntry(tx, {
    ...actor,
    action: 'auth.login',
    outcome: 'success',
    targetType: 'session',
    targetId: tokens.sessionId,
    ...(details ? { details } : {}),
  });
  return tokensBody(tokens, user);
}

const invalidCredentials = () =>
  new TollgateError('invalid_credentials', 'the email or the password is wrong', {
    hint: 'check both, or reset your password',
  });

/** Stores the password under today's hashing parameters (after it matched a weaker hash). */
async function rehashPassword(tx: Queryable, userId: string, password: string): Promise<void> {
  await tx.query('UPDATE users SET password_hash = $2 WHERE id = $1', [userId, await hashPassword(password)]);
}

/** A real hash to verify against when the email is unknown, so both failures take the same time. */
let decoyHash: Promise<string> | undefined;

export function authRoutes(options: AuthRouteOptions) {
  const { database, signingKey, refreshTokens } = options;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/auth/login',
      operationId: 'login',
      summary: 'Log in with email and password',
      description:
        'Answers the same 401 `invalid_credentials` for an unknown email and a wrong password, in the same time. ' +
        'For an account with two-factor authentication, a right password opens no session: the answer is ' +
        '`{"two_factor_required": true, "challenge": "tgc_...", "methods": [...]}`, and POST /v1/auth/login/2fa ' +
        'with the challenge and a code completes the login.',
      tags: ['auth'],
      body: z.object({ email: z.string().min(3).max(320), password: z.string().min(1).max(1024) }),
      responses: {
        200: {
          description: 'Signed in, or (two_factor_required) the password was right and a second factor is needed',
          schema: z.union([tokensSchema, twoFactorRequiredSchema]),
        },
      },
      handler: async (ctx, { body }) => {
        const client = clientOf(ctx);
        if (options.counters) await guardLogin(options.counters, { ip: client.ip, email: body.email });
        const found = await findLoginByEmail(database, body.email);
        decoyHash ??= hashPassword('decoy password that matches nothing');
        const check = await verifyPassword(body.password, found?.passwordHash ?? (await decoyHash));
        if (!found?.passwordHash || !check.ok) {
          await recordAudit(database, {
            ...(found ? { actorUserId: found.user.id } : {}),
            actorLabel: found ? userLabel(found.user.id) : 'anonymous',
            action: 'auth.login_failed',
            outcome: 'failure',
            targetType: 'email',
            targetId: emailPseudonym(options.auditKey, body.email),
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
          });
          if (options.counters) await recordLoginFailure(options.counters, { email: body.email });
          throw invalidCredentials();
        }
        if (options.counters) await clearLoginFailures(options.counters, { email: body.email });
        ctx.body = await database.transaction(async (tx) => {
          if (check.needsRehash) await rehashPassword(tx, found.user.id, body.password);
          return completeFirstFactor(tx, ctx, { user: found.user, signingKey, refreshTokens });
        });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/refresh',
      operationId: 'refreshSession',
      summary: 'Exchange a refresh token for new tokens',
      description:
        'Each refresh token works once. Presenting one that was already exchanged revokes its whole session (401 `refresh_token_reused`).',
      tags: ['auth'],
      body: z.object({ refresh_token: z.string().min(1).max(200) }),
      responses: { 200: { description: 'New tokens', schema: tokensSchema } },
      handler: async (ctx, { body }) => {
        const outcome = await refreshSession(database, { refreshToken: body.refresh_token, signingKey, refreshTokens });
        if (!outcome.ok) {
          if (outcome.reason === 'reused') {
            const client = clientOf(ctx);
            await recordAudit(database, {
              ...(outcome.userId ? { actorUserId: outcome.userId } : {}),
              actorLabel: 'anonymous',
              action: 'auth.refresh_token_reused',
              outcome: 'denied',
              targetType: 'session',
              ...(outcome.sessionId ? { targetId: outcome.sessionId } : {}),
              ip: client.ip,
              userAgent: client.userAgent,
              requestId: ctx.state.requestId,
            });
            throw new TollgateError(
              'refresh_token_reused',
              'this refresh token was already used; the session has been revoked for safety',
              { hint: 'log in again' },
            );
          }
          throw new TollgateError(
            'unauthorized',
            `the refresh token is ${outcome.reason === 'unknown' ? 'invalid' : outcome.reason}`,
            {
              hint: 'log in again',
            },
          );
        }
        const user = await findUserById(database, outcome.userId);
        if (!user) throw new TollgateError('unauthorized', 'this account no longer exists');
        ctx.body = tokensBody(outcome.tokens, user);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/logout',
      operationId: 'logout',
      summary: 'End this session',
      description:
        'A personal access token has no session to end: a request made with one is refused with 403 `session_required`; revoke the token instead (DELETE /v1/me/tokens/{id}).',
      tags: ['auth'],
      responses: { 204: { description: 'Logged out' } },
      handler: async (ctx) => {
        const caller = await authenticateSession(
          ctx,
          { database, signingKey },
          {
            action: 'logging out',
            hint: 'a personal access token has no session to end: revoke it instead (tollgate tokens revoke <id>)',
          },
        );
        const client = clientOf(ctx);
        await database.transaction(async (tx) => {
          await revokeSession(tx, {
            userId: caller.user.id,
            sessionId: caller.sessionId,
            reason: 'logout',
            refreshTokens,
          });
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'auth.logout',
            outcome: 'success',
            targetType: 'session',
            targetId: caller.sessionId,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
          });
        });
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/logout-everywhere',
      operationId: 'logoutEverywhere',
      summary: 'End every session of this account, this one included',
      description: 'Personal access tokens are not revoked: they are revoked one by one (DELETE /v1/me/tokens/{id}).',
      tags: ['auth'],
      responses: { 200: { description: 'Sessions ended', schema: z.object({ revoked: z.number().int() }) } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const client = clientOf(ctx);
        const revoked = await database.transaction(async (tx) => {
          const count = await revokeAllSessions(tx, { userId: caller.user.id, refreshTokens });
          await appendAuditEntry(tx, {
            actorUserId: caller.user.id,
            actorLabel: userLabel(caller.user.id),
            action: 'auth.logout_everywhere',
            outcome: 'success',
            targetType: 'user',
            targetId: caller.user.id,
            ip: client.ip,
            userAgent: client.userAgent,
            requestId: ctx.state.requestId,
            details: { sessions: count },
          });
          return count;
        });
        ctx.body = { revoked };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/me',
      operationId: 'getMe',
      summary: 'The signed-in account',
      tags: ['auth'],
      responses: {
        200: {
          description: 'The account',
          schema: userSchema.extend({
            authenticated_via: z.enum(['session', 'token']).describe('what this request was signed in with'),
            session_id: z
              .string()
              .nullable()
              .describe('the session of the access token; null for a personal access token'),
            token_id: z.string().nullable().describe('the personal access token used; null for a session'),
          }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        ctx.body = {
          ...userBody(caller.user),
          authenticated_via: caller.via,
          session_id: caller.via === 'session' ? caller.sessionId : null,
          token_id: caller.via === 'token' ? caller.tokenId : null,
        };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/sessions',
      operationId: 'listSessions',
      summary: "The signed-in account's live sessions",
      tags: ['auth'],
      responses: {
        200: {
          description: 'Sessions, newest first',
          schema: z.object({
            sessions: z.array(
              z.object({
                id: z.string(),
                current: z.boolean(),
                created_at: z.string(),
                last_refreshed_at: z.string().nullable(),
                expires_at: z.string(),
                ip: z.string().nullable(),
                user_agent: z.string().nullable(),
              }),
            ),
          }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const sessions = await listActiveSessions(database, caller.user.id);
        ctx.body = {
          sessions: sessions.map((session) => ({
            id: session.id,
            // A personal access token has no session, so none is current.
            current: caller.via === 'session' && session.id === caller.sessionId,
            created_at: session.createdAt.toISOString(),
            last_refreshed_at: session.lastRefreshedAt?.toISOString() ?? null,
            expires_at: session.expiresAt.toISOString(),
            ip: session.ip,
            user_agent: session.userAgent,
          })),
        };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/sessions/:id',
      operationId: 'revokeSession',
      summary: 'End one of your sessions',
      tags: ['auth'],
      responses: { 204: { description: 'Ended' } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const sessionId = String((ctx as unknown as { params: Record<string, string> }).params.id ?? '');
        if (!/^[0-9a-f-]{36}$/i.test(sessionId)) throw new TollgateError('not_found', 'no such session');
        const client = clientOf(ctx);
        const revoked = await database.transaction(async (tx) => {
          const done = await revokeSession(tx, { userId: caller.user.id, sessionId, reason: 'revoked', refreshTokens });
          if (done) {
            await appendAuditEntry(tx, {
              actorUserId: caller.user.id,
              actorLabel: userLabel(caller.user.id),
              action: 'auth.session_revoked',
              outcome: 'success',
              targetType: 'session',
              targetId: sessionId,
              ip: client.ip,
              userAgent: client.userAgent,
              requestId: ctx.state.requestId,
            });
          }
          return done;
        });
        if (!revoked) throw new TollgateError('not_found', 'no such session');
        ctx.status = 204;
      },
    }),
  ];
}
