import type { Context } from 'koa';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import { sessionIsLive, verifyAccessToken } from './sessions.js';
import { findUserById, type User } from './users.js';

export interface Caller {
  user: User;
  sessionId: string;
}

/** Where a request came from, for sessions and audit entries. */
export function clientOf(ctx: Context): { ip: string; userAgent: string | undefined } {
  return { ip: ctx.ip, userAgent: ctx.get('user-agent') || undefined };
}

/**
 * The signed-in caller of a control-plane request: `Authorization: Bearer <access token>` whose
 * session is still live (logging out takes effect at once, not when the token expires).
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
  const claims = verifyAccessToken(match[1], options.signingKey);
  if (!(await sessionIsLive(options.database, claims.sessionId))) {
    throw new TollgateError('unauthorized', 'this session has ended', { hint: 'log in again' });
  }
  const user = await findUserById(options.database, claims.userId);
  if (!user) throw new TollgateError('unauthorized', 'this account no longer exists');
  return { user, sessionId: claims.sessionId };
}
