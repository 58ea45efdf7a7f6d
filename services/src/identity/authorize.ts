import type { Context } from 'koa';
import { recordAudit, userLabel } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database } from '../storage/database.js';
import { type Caller, clientOf } from './authenticate.js';
import { can, type Membership, type Permission } from './permissions.js';

/**
 * The check every route makes after `authenticate`: may this caller use `permission`? A denial
 * answers 403 `forbidden` and writes nothing but an audit entry saying who was refused what.
 */
export async function authorize(
  ctx: Context,
  options: {
    database: Database;
    caller: Caller;
    permission: Permission;
    membership?: Membership;
    teamId?: string;
    target?: { type: string; id: string };
  },
): Promise<void> {
  const { caller, permission } = options;
  const principal = {
    userId: caller.user.id,
    isOperator: caller.user.installationRole === 'admin',
    ...(options.membership ? { membership: options.membership } : {}),
  };
  if (can(principal, permission)) return;
  const client = clientOf(ctx);
  await recordAudit(options.database, {
    actorUserId: caller.user.id,
    actorLabel: userLabel(caller.user.id),
    action: 'authz.denied',
    outcome: 'denied',
    ...(options.target ? { targetType: options.target.type, targetId: options.target.id } : {}),
    ...(options.teamId ? { teamId: options.teamId } : {}),
    ip: client.ip,
    userAgent: client.userAgent,
    requestId: ctx.state.requestId,
    details: { permission, method: ctx.method, path: ctx.path },
  });
  throw new TollgateError('forbidden', `this needs the permission ${permission}`, {
    details: { permission },
    hint: 'ask an admin of the team (or an operator) to grant it',
  });
}
