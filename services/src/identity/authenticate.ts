import type { Context } from 'koa';
import { type AuditEntryInput, recordAudit, userLabel } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import { isPersonalAccessToken, usePersonalAccessToken } from './personal-access-tokens.js';
import { sessionIsLive, verifyAccessToken } from './sessions.js';
import { findUserById, type User } from './users.js';

/**
 * Who is calling, and how they proved it: a session's access token (`via: 'session'`), or a
 * personal access token (`via: 'token'`), which has no session.
 */
export type Caller = SessionCaller | TokenCaller;

export interface SessionCaller {
  via: 'session';
  user: User;
  sessionId: string;
}

export interface TokenCaller {
  via: 'token';
  user: User;
  /** No session: routes about "this session" must not act on one (see requireSession). */
  sessionId: undefined;
  /** The personal access token used. */
  tokenId: string;
}

/** Where a request came from, for sessions and audit entries. */
export function clientOf(ctx: Context): { ip: string; userAgent: string | undefined } {
  return { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined };
}

/** The part of an audit entry that says where the request came from: address, client, request id. */
export function requestAudit(ctx: Context): Pick<AuditEntryInput, 'ip' | 'userAgent' | 'requestId'> {
  const client = clientOf(ctx);
  return {
    ip: client.ip,
    ...(client.userAgent ? { userAgent: client.userAgent } : {}),
    requestId: ctx.state.requestId,
  };
}

/** An audit entry for what a signed-in caller did through this request. */
export function callerAudit(
  ctx: Context,
  caller: Caller,
  entry: Omit<AuditEntryInput, 'actorLabel' | 'actorUserId'>,
): AuditEntryInput {
  return { actorUserId: caller.user.id, actorLabel: userLabel(caller.user.id), ...requestAudit(ctx), ...entry };
}

const tokenRefusals = {
  unknown: 'this personal access token is invalid',
  revoked: 'this personal access token was revoked',
  expired: 'this personal access token has expired',
} as const;

/**
 * The signed-in caller of a control-plane request: `Authorization: Bearer <access token>` whose
 * session is still live (logging out takes effect at once, not when the token expires), or
 * `Bearer tgpat_...`, a personal access token that is neither revoked nor expired.
 */
export async function authenticate(
  ctx: Context,
  options: { database: Queryable; signingKey: Buffer },
): Promise<Caller> {
  const header = ctx.get('authorization');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) {
    ctx.set('WWW-Authenticate', 'Bearer realm="tollgate"');
    throw new TollgateError('unauthorized', 'sign in first: send Authorization: Bearer <access token>');
  }
  const bearer = match[1];
  if (isPersonalAccessToken(bearer)) {
    const check = await usePersonalAccessToken(options.database, { token: bearer, ip: ctx.ip });
    if (!check.ok) {
      const when = check.expiresAt ? ` (on ${check.expiresAt.toISOString()})` : '';
      throw new TollgateError('unauthorized', `${tokenRefusals[check.reason]}${when}`, {
        hint: 'create a new one with `tollgate tokens create` (signed in with a session)',
      });
    }
    const user = await findUserById(options.database, check.userId);
    if (!user) throw new TollgateError('unauthorized', 'this account no longer exists');
    return { via: 'token', user, sessionId: undefined, tokenId: check.tokenId };
  }
  const claims = verifyAccessToken(bearer, options.signingKey);
  if (!(await sessionIsLive(options.database, claims.sessionId))) {
    throw new TollgateError('unauthorized', 'this session has ended', { hint: 'log in again' });
  }
  const user = await findUserById(options.database, claims.userId);
  if (!user) throw new TollgateError('unauthorized', 'this account no longer exists');
  return { via: 'session', user, sessionId: claims.sessionId };
}

/**
 * `authenticate`, for the routes that manage credentials: making personal access tokens, deleting
 * the account, changing its password, email or second factors, linking login providers. They need a
 * session, a person who logged in, so that a leaked token cannot lock its owner out or mint more
 * tokens. A token caller is refused with 403 `session_required` (403, not 401: the token is fine,
 * so a client must not refresh and retry), and the refusal is audited as `authz.denied`.
 */
export async function authenticateSession(
  ctx: Context,
  options: { database: Database; signingKey: Buffer },
  refusal: {
    /** What was refused, for the message: e.g. 'creating personal access tokens'. */
    action: string;
    /** What to do instead; by default, log in and run it without TOLLGATE_TOKEN. */
    hint?: string;
  },
): Promise<SessionCaller> {
  const caller = await authenticate(ctx, options);
  if (caller.via === 'session') return caller;
  const client = clientOf(ctx);
  await recordAudit(options.database, {
    actorUserId: caller.user.id,
    actorLabel: userLabel(caller.user.id),
    action: 'authz.denied',
    outcome: 'denied',
    targetType: 'personal_access_token',
    targetId: caller.tokenId,
    ip: client.ip,
    userAgent: client.userAgent,
    requestId: ctx.state.requestId,
    details: { reason: 'session_required', method: ctx.method, path: ctx.path },
  });
  throw new TollgateError('session_required', `${refusal.action} needs a session, not a personal access token`, {
    hint: refusal.hint ?? 'log in (tollgate login) and run it without TOLLGATE_TOKEN',
  });
}
