import { z } from 'zod';
import { recordAudit, userLabel } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import type { Database } from '../storage/database.js';
import { authenticate, authenticateSession, clientOf } from './authenticate.js';
import { verifyPassword } from './passwords.js';
import { deleteAccount, exportAccount } from './privacy.js';
import type { RefreshTokenStore } from './refresh-token-store.js';
import { findLoginByEmail } from './users.js';

/** The data-subject rights: a copy of everything held (export) and erasure (delete). */
export function privacyRoutes(options: { database: Database; signingKey: Buffer; refreshTokens: RefreshTokenStore }) {
  const { database } = options;
  return [
    defineRoute({
      method: 'get',
      path: '/v1/me/export',
      operationId: 'exportAccount',
      summary: 'Everything Tollgate holds about you, as one JSON document',
      description:
        'Profile, teams and roles, sessions, keys you created, invitations, two-factor status and your audit entries. docs/privacy.md lists what is kept and why.',
      tags: ['account'],
      responses: { 200: { description: 'The archive', schema: z.record(z.string(), z.unknown()) } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        const archive = await exportAccount(database, caller.user.id);
        const client = clientOf(ctx);
        await recordAudit(database, {
          actorUserId: caller.user.id,
          actorLabel: userLabel(caller.user.id),
          action: 'user.exported',
          outcome: 'success',
          targetType: 'user',
          targetId: caller.user.id,
          ip: client.ip,
          ...(client.userAgent ? { userAgent: client.userAgent } : {}),
          requestId: ctx.state.requestId,
        });
        ctx.set('Content-Disposition', 'attachment; filename="tollgate-account-export.json"');
        ctx.set('Cache-Control', 'no-store');
        ctx.body = archive;
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/me',
      operationId: 'deleteAccount',
      summary: 'Delete your account and erase your personal data',
      description:
        'Needs the password when the account has one (403 reauthentication_failed otherwise) and `confirm` equal to your email. Refused with 409 owner_must_transfer while you own, or are the only admin of, a team with other members.',
      tags: ['account'],
      body: z.object({ confirm: z.string(), password: z.string().max(1024).optional() }),
      responses: { 204: { description: 'Deleted' } },
      handler: async (ctx, { body }) => {
        const caller = await authenticateSession(ctx, options, { action: 'deleting the account' });
        if (body.confirm.trim().toLowerCase() !== caller.user.email.toLowerCase()) {
          throw new TollgateError('validation_failed', 'confirm: type your email address to confirm the deletion');
        }
        const login = await findLoginByEmail(database, caller.user.email);
        if (login?.passwordHash && !(await verifyPassword(body.password ?? '', login.passwordHash)).ok) {
          throw new TollgateError('reauthentication_failed', 'the password is wrong', {
            hint: 'give your current password',
          });
        }
        await deleteAccount(database, {
          userId: caller.user.id,
          refreshTokens: options.refreshTokens,
          requestId: ctx.state.requestId,
        });
        ctx.status = 204;
      },
    }),
  ];
}
