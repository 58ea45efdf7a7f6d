import { appendAuditEntry, userLabel } from '../audit/index.js';
import { identityTokensContext, ssoClientSecretContext } from '../identity/oauth/oauth-store.js';
import { smsPhoneContext, totpSeedContext } from '../identity/two-factor-store.js';
import type { Database } from '../storage/database.js';
import { webhookSecretContext } from '../webhooks/webhook-store.js';
import type { MasterKeyring } from './master-keyring.js';

/**
 * Every column that holds a value sealed with the master keyring, with the context it was sealed
 * under. A new kind of secret at rest must be listed here, or rotation would leave it behind.
 */
export const sealedColumns = [
  {
    table: 'user_two_factor',
    column: 'totp_secret_sealed',
    idColumn: 'user_id',
    context: totpSeedContext,
  },
  { table: 'user_two_factor', column: 'sms_phone_sealed', idColumn: 'user_id', context: smsPhoneContext },
  { table: 'user_identities', column: 'tokens_sealed', idColumn: 'id', context: identityTokensContext },
  { table: 'team_sso', column: 'client_secret_sealed', idColumn: 'team_id', context: ssoClientSecretContext },
  { table: 'webhook_endpoints', column: 'secret_sealed', idColumn: 'id', context: webhookSecretContext },
] as const;

export interface RotationReport {
  /** Sealed values looked at. */
  examined: number;
  /** Values that were under an older key and are now under the current one. */
  reencrypted: number;
  currentKeyId: string;
}

/**
 * Re-encrypts every sealed secret that is not under the current master key, one row per
 * transaction (so a long run never holds many locks), each update guarded by the value it read (so
 * a value changed meanwhile is left to the next run). Values under a key the ring does not hold fail
 * with `secret_key_unknown`: set TOLLGATE_MASTER_KEY_PREVIOUS to that key and run again.
 */
export async function reencryptSecrets(
  database: Database,
  options: { keyring: MasterKeyring; actorUserId: string; requestId?: string },
): Promise<RotationReport> {
  const report: RotationReport = { examined: 0, reencrypted: 0, currentKeyId: options.keyring.currentKeyId };
  for (const sealed of sealedColumns) {
    const rows = await database.query<{ id: string; value: string }>(
      `SELECT ${sealed.idColumn}::text AS id, ${sealed.column} AS value FROM ${sealed.table} WHERE ${sealed.column} IS NOT NULL`,
    );
    for (const row of rows.rows) {
      report.examined++;
      if (options.keyring.isCurrent(row.value)) continue;
      const context = sealed.context(row.id);
      const resealed = options.keyring.encrypt(options.keyring.decrypt(row.value, context), context);
      const updated = await database.query(
        `UPDATE ${sealed.table} SET ${sealed.column} = $3 WHERE ${sealed.idColumn} = $1 AND ${sealed.column} = $2`,
        [row.id, row.value, resealed],
      );
      report.reencrypted += updated.rowCount;
    }
  }
  await database.transaction((tx) =>
    appendAuditEntry(tx, {
      actorUserId: options.actorUserId,
      actorLabel: userLabel(options.actorUserId),
      action: 'secrets.reencrypted',
      outcome: 'success',
      ...(options.requestId ? { requestId: options.requestId } : {}),
      details: { ...report },
    }),
  );
  return report;
}
