import { createHash, randomInt } from 'node:crypto';
import type { Queryable } from '../storage/database.js';

/**
 * API keys look like `tg_live_<id>_<secret>` (`tg_test_` in test mode): the id finds the row, the
 * secret proves possession. Both are base62, so `_` only ever separates the parts. The secret has
 * 43 base62 characters (256 bits); only its SHA-256 is stored, and the whole key is shown once.
 */
const base62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomBase62(length: number): string {
  let text = '';
  for (let index = 0; index < length; index++) text += base62[randomInt(base62.length)];
  return text;
}

export type KeyMode = 'live' | 'test';

export interface ApiKeySummary {
  id: string;
  name: string | null;
  mode: KeyMode;
  /** The part of the key that is not secret: `tg_live_<id>`. */
  prefix: string;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

interface KeyRow {
  id: string;
  name: string | null;
  mode: KeyMode;
  lookup_id: string;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const toSummary = (row: KeyRow): ApiKeySummary => ({
  id: row.id,
  name: row.name,
  mode: row.mode,
  prefix: `tg_${row.mode}_${row.lookup_id}`,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

export async function createApiKey(
  tx: Queryable,
  input: { teamId: string; name?: string; mode?: KeyMode; ownerUserId?: string },
): Promise<{ key: string; summary: ApiKeySummary }> {
  const mode = input.mode ?? 'live';
  const lookupId = randomBase62(16);
  const secret = randomBase62(43);
  const result = await tx.query<KeyRow>(
    `INSERT INTO api_keys (team_id, owner_user_id, name, mode, lookup_id, secret_sha256)
     VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING id, name, mode, lookup_id, created_at, revoked_at, last_used_at`,
    [
      input.teamId,
      input.ownerUserId ?? null,
      input.name ?? null,
      mode,
      lookupId,
      createHash('sha256').update(secret).digest(),
    ],
  );
  return { key: `tg_${mode}_${lookupId}_${secret}`, summary: toSummary(result.rows[0] as KeyRow) };
}

export async function listApiKeys(db: Queryable, teamId: string): Promise<ApiKeySummary[]> {
  const result = await db.query<KeyRow>(
    `SELECT id, name, mode, lookup_id, created_at, revoked_at, last_used_at FROM api_keys
     WHERE team_id = $1 ORDER BY created_at DESC`,
    [teamId],
  );
  return result.rows.map(toSummary);
}

/** Revokes a key of the team; false when there is no such live key. */
export async function revokeApiKey(tx: Queryable, input: { teamId: string; keyId: string }): Promise<boolean> {
  if (!/^[0-9a-f-]{36}$/i.test(input.keyId)) return false;
  const result = await tx.query(
    'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL',
    [input.keyId, input.teamId],
  );
  return result.rowCount > 0;
}
