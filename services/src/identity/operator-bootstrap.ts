import { appendAuditEntry } from '../audit/index.js';
import type { Database } from '../storage/database.js';
import type { RefreshTokenStore } from './refresh-token-store.js';
import { type ClientInfo, createSession, type SessionTokens } from './sessions.js';
import { normalizeEmail, type User } from './users.js';

/** Held while checking for and creating the first operator, so two processes create one. */
const bootstrapLockKey = 7_326_854_012_342;

export interface BootstrapResult {
  user: User;
  /** A session for the local CLI, opened with the account. */
  tokens: SessionTokens;
}

/**
 * On a fresh installation (no operator yet), creates the first operator account with no password
 * and opens a session for the local CLI. Nothing is printed or logged here: the caller stores the
 * tokens where only the local user can read them. Returns undefined when an operator exists.
 */
export async function bootstrapFirstOperator(
  database: Database,
  options: { email: string; signingKey: Buffer; refreshTokens: RefreshTokenStore; client?: ClientInfo },
): Promise<BootstrapResult | undefined> {
  return database.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [bootstrapLockKey]);
    const existing = await tx.query(
      `SELECT 1 FROM users WHERE installation_role = 'admin' AND deleted_at IS NULL LIMIT 1`,
    );
    if (existing.rowCount > 0) return undefined;
    const created = await tx.query<{
      id: string;
      email: string;
      name: string | null;
      email_verified_at: Date | null;
      created_at: Date;
    }>(
      `INSERT INTO users (email, name, installation_role, email_verified_at)
       VALUES ($1, 'Operator', 'admin', now()) RETURNING id, email, name, email_verified_at, created_at`,
      [normalizeEmail(options.email)],
    );
    const row = created.rows[0];
    if (!row) throw new Error('operator insert returned no row');
    const user: User = {
      id: row.id,
      email: row.email,
      name: row.name,
      installationRole: 'admin',
      emailVerifiedAt: row.email_verified_at,
      createdAt: row.created_at,
    };
    const tokens = await createSession(tx, {
      userId: user.id,
      client: options.client ?? { userAgent: 'tollgate start (first operator)' },
      signingKey: options.signingKey,
      refreshTokens: options.refreshTokens,
    });
    await appendAuditEntry(tx, {
      actorLabel: 'system',
      action: 'user.operator_bootstrapped',
      outcome: 'success',
      targetType: 'user',
      targetId: user.id,
    });
    return { user, tokens };
  });
}
