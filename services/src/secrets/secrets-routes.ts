import { z } from 'zod';
import { defineRoute } from '../http/route.js';
import { authenticate } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import type { Database } from '../storage/database.js';
import type { MasterKeyring } from './master-keyring.js';
import { reencryptSecrets } from './rotate-secrets.js';

export function secretsRoutes(options: { database: Database; signingKey: Buffer; keyring: MasterKeyring }) {
  return [
    defineRoute({
      method: 'post',
      path: '/v1/admin/secrets/reencrypt',
      operationId: 'reencryptSecrets',
      summary: 'Re-encrypt every secret at rest under the current master key (secrets:rotate, operators)',
      description:
        'Run after starting every process with the new TOLLGATE_MASTER_KEY and the old one in TOLLGATE_MASTER_KEY_PREVIOUS. Safe to run again; when it reports nothing left, remove the old key.',
      tags: ['admin'],
      responses: {
        200: {
          description: 'What was done',
          schema: z.object({ examined: z.number().int(), reencrypted: z.number().int(), current_key_id: z.string() }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        await authorize(ctx, { database: options.database, caller, permission: 'secrets:rotate' });
        const report = await reencryptSecrets(options.database, {
          keyring: options.keyring,
          actorUserId: caller.user.id,
          requestId: ctx.state.requestId,
        });
        ctx.body = { examined: report.examined, reencrypted: report.reencrypted, current_key_id: report.currentKeyId };
      },
    }),
  ];
}
