import { appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import type { RefreshTokenStore } from './refresh-token-store.js';

/** Shown in place of a deleted person: their id stays (it links the kept records), nothing else. */
export function pseudonymFor(userId: string): string {
  return `deleted-user-${userId}@deleted.invalid`;
}

const iso = (value: unknown) => (value instanceof Date ? value.toISOString() : value);

/** Rows as plain JSON: dates as ISO strings. */
function plain<Row extends Record<string, unknown>>(rows: Row[]): Record<string, unknown>[] {
  return rows.map((row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [key, iso(value)])));
}

/**
 * Everything Tollgate holds about a person (GDPR art. 15 and 20, CCPA, LGPD art. 18), as one JSON
 * document. Secrets are described, never exported: password and key hashes, TOTP seeds and
 * recovery codes stay behind, since they are security data rather than information about the person.
 */
export async function exportAccount(db: Queryable, userId: string): Promise<Record<string, unknown>> {
  const user = await db.query(
    `SELECT id, email, name, installation_role, email_verified_at, created_at, updated_at,
            password_hash IS NOT NULL AS has_password
     FROM users WHERE id = $1 AND deleted_at IS NULL`,
    [userId],
  );
  if (!user.rows[0]) throw new TollgateError('not_found', 'no such account');
  const [teams, sessions, keys, invitations, twoFactor, audit] = await Promise.all([
    db.query(
      `SELECT t.id, t.slug, t.name, m.role, m.grants, m.revocations, m.created_at AS joined_at,
              t.owner_user_id = m.user_id AS owner
       FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 ORDER BY m.created_at`,
      [userId],
    ),
    db.query(
      `SELECT id, created_at, last_refreshed_at, expires_at, revoked_at, revoked_reason, host(ip) AS ip, user_agent
       FROM sessions WHERE user_id = $1 ORDER BY created_at`,
      [userId],
    ),
    db.query(
      `SELECT id, team_id, name, mode, 'tg_' || mode || '_' || lookup_id AS prefix, created_at, revoked_at, last_used_at
       FROM api_keys WHERE owner_user_id = $1 ORDER BY created_at`,
      [userId],
    ),
    db.query(
      `SELECT i.team_id, i.role, i.created_at, i.expires_at, i.accepted_at, i.revoked_at
       FROM team_invitations i JOIN users u ON lower(u.email) = lower(i.email) WHERE u.id = $1 ORDER BY i.created_at`,
      [userId],
    ),
    db.query(
      `SELECT totp_confirmed_at IS NOT NULL AS totp_enabled, email_codes_enabled,
              cardinality(recovery_code_hashes) AS recovery_codes_left,
              sms_confirmed_at IS NOT NULL AS sms_enabled, sms_phone_masked AS sms_phone
       FROM user_two_factor WHERE user_id = $1`,
      [userId],
    ),
    db.query(
      `SELECT seq, occurred_at, action, outcome, target_type, target_id, team_id, host(ip) AS ip, user_agent, request_id, details
       FROM audit_log WHERE actor_user_id = $1 ORDER BY seq`,
      [userId],
    ),
  ]);
  return {
    format: 'tollgate-account-export/1',
    exported_at: new Date().toISOString(),
    account: plain(user.rows)[0],
    teams: plain(teams.rows),
    sessions: plain(sessions.rows),
    api_keys_created: plain(keys.rows),
    invitations_received: plain(invitations.rows),
    two_factor: plain(twoFactor.rows)[0] ?? {
      totp_enabled: false,
      email_codes_enabled: false,
      recovery_codes_left: 0,
      sms_enabled: false,
      sms_phone: null,
    },
    audit_entries: plain(audit.rows),
    linked_identities: plain(
      (
        await db.query(
          `SELECT provider, team_id, subject, email, created_at, last_login_at
           FROM user_identities WHERE user_id = $1 ORDER BY created_at`,
          [userId],
        )
      ).rows,
    ),
    personal_access_tokens: plain(
      (
        await db.query(
          `SELECT id, name, display_prefix AS prefix, created_at, expires_at, last_used_at,
                  host(last_used_ip) AS last_used_ip, revoked_at
           FROM personal_access_tokens WHERE user_id = $1 ORDER BY created_at`,
          [userId],
        )
      ).rows,
    ),
    not_included:
      "password hash, API-key and personal-access-token secret hashes, TOTP seed, recovery-code hashes and login providers' tokens: security data, never exported",
  };
}

/**
 * Erases a person (GDPR art. 17, CCPA, LGPD art. 18): their name, email, password, sessions' IP
 * addresses and user agents, second factors, pending tokens, personal access tokens and memberships go. What the law lets
 * us keep stays, pointing at the account id only: invoices and subscriptions belong to teams, and
 * audit entries name actors by id (see docs/privacy.md). Refused while the person owns a team that
 * has other members: ownership must pass to someone first.
 */
export async function deleteAccount(
  database: Database,
  input: { userId: string; refreshTokens: RefreshTokenStore; requestId?: string; ip?: string },
): Promise<void> {
  await database.transaction(async (tx) => {
    const owned = await tx.query<{ slug: string }>(
      // Teams this person owns, or is the only admin of, that have other members.
      `SELECT t.slug FROM teams t
       WHERE EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id AND m.user_id <> $1)
         AND (t.owner_user_id = $1
              OR (EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id AND m.user_id = $1 AND m.role = 'admin')
                  AND NOT EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id AND m.user_id <> $1 AND m.role = 'admin')))`,
      [input.userId],
    );
    if (owned.rowCount > 0) {
      throw new TollgateError(
        'owner_must_transfer',
        `you own (or are the only admin of) teams with other members: ${owned.rows.map((row) => row.slug).join(', ')}`,
        {
          hint: 'make another member owner or admin of those teams first',
        },
      );
    }
    const user = await tx.query<{ email: string }>(
      'SELECT email FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE',
      [input.userId],
    );
    const email = user.rows[0]?.email;
    if (email === undefined) throw new TollgateError('not_found', 'no such account');

    await tx.query('UPDATE teams SET owner_user_id = NULL WHERE owner_user_id = $1', [input.userId]);
    await tx.query('DELETE FROM team_members WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM team_invitations WHERE lower(email) = lower($1) AND accepted_at IS NULL', [email]);
    await tx.query('UPDATE api_keys SET owner_user_id = NULL WHERE owner_user_id = $1', [input.userId]);
    const sessions = await tx.query<{ id: string }>(
      `UPDATE sessions SET ip = NULL, user_agent = NULL,
         revoked_at = coalesce(revoked_at, now()), revoked_reason = coalesce(revoked_reason, 'revoked')
       WHERE user_id = $1 RETURNING id`,
      [input.userId],
    );
    // Every session, the long-revoked ones too: a Redis key that outlived an outage goes now.
    await input.refreshTokens.forget(
      tx,
      sessions.rows.map((row) => row.id),
    );
    await tx.query('DELETE FROM account_tokens WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM personal_access_tokens WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM two_factor_challenges WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM two_factor_failures WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM sms_sends WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM user_two_factor WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM user_identities WHERE user_id = $1', [input.userId]);
    await tx.query('DELETE FROM oauth_logins WHERE user_id = $1 OR link_user_id = $1', [input.userId]);
    await tx.query(
      `UPDATE users SET email = $2, name = NULL, password_hash = NULL, email_verified_at = NULL,
         installation_role = 'member', deleted_at = now(), updated_at = now()
       WHERE id = $1`,
      [input.userId, pseudonymFor(input.userId)],
    );
    await appendAuditEntry(tx, {
      actorUserId: input.userId,
      actorLabel: `user:${input.userId}`,
      action: 'user.deleted',
      outcome: 'success',
      targetType: 'user',
      targetId: input.userId,
      ...(input.requestId ? { requestId: input.requestId } : {}),
    });
  });
}
