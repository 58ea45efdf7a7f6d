import { createHash, randomInt } from 'node:crypto';
import type { Queryable } from '../storage/database.js';
import { enqueueTeamEvent } from '../webhooks/webhook-events.js';

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

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export type KeyMode = 'live' | 'test';

/** HTTP methods a key can be limited to. */
export const keyMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type KeyMethod = (typeof keyMethods)[number];

/**
 * Per-key rate-limit overrides, in calls per window; an absent window keeps the plan's limit. The
 * same snake_case names in the database (jsonb), over HTTP and here, so the limiter reads them as is.
 */
export interface KeyLimits {
  per_second?: number;
  per_minute?: number;
  per_hour?: number;
  per_day?: number;
}

export const keyLimitWindows = ['per_second', 'per_minute', 'per_hour', 'per_day'] as const;

/** The limits in a stored value, keeping only known windows with positive whole numbers. */
export function limitsFromJson(json: unknown): KeyLimits {
  const limits: KeyLimits = {};
  if (typeof json !== 'object' || json === null) return limits;
  for (const name of keyLimitWindows) {
    const value = (json as Record<string, unknown>)[name];
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) limits[name] = value;
  }
  return limits;
}

export interface ApiKeySummary {
  id: string;
  name: string | null;
  mode: KeyMode;
  /** The part of the key that is not secret: `tg_live_<id>`. */
  prefix: string;
  /** null: owned by the team rather than a member. */
  ownerUserId: string | null;
  /** The APIs the key is limited to; empty: every API. */
  apis: { id: string; slug: string }[];
  /** Empty: every method. */
  methods: KeyMethod[];
  /** CIDR networks the key may be used from; empty: anywhere. */
  allowedCidrs: string[];
  limits: KeyLimits;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  rotatedAt: Date | null;
  /** Until then the secret from before the last rotation still works; null: it does not. */
  previousSecretExpiresAt: Date | null;
  /** Recorded by the gateways at most once a minute. */
  lastUsedAt: Date | null;
}

interface KeyRow {
  id: string;
  name: string | null;
  mode: KeyMode;
  lookup_id: string;
  owner_user_id: string | null;
  apis: { id: string; slug: string }[];
  methods: KeyMethod[];
  allowed_cidrs: string[];
  limits: unknown;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  rotated_at: Date | null;
  previous_secret_expires_at: Date | null;
  last_used_at: Date | null;
}

// The APIs of a key come from api_key_apis (0012); cidr[] is read as text[] so both drivers
// return an array of strings.
const summaryColumns = `k.id, k.name, k.mode, k.lookup_id, k.owner_user_id, k.methods,
  k.allowed_cidrs::text[] AS allowed_cidrs, k.limits, k.created_at, k.expires_at, k.revoked_at,
  k.rotated_at, k.previous_secret_expires_at, k.last_used_at,
  COALESCE((SELECT json_agg(json_build_object('id', a.id, 'slug', a.slug) ORDER BY a.slug)
            FROM api_key_apis ka JOIN apis a ON a.id = ka.api_id WHERE ka.api_key_id = k.id), '[]'::json) AS apis`;

const toSummary = (row: KeyRow): ApiKeySummary => ({
  id: row.id,
  name: row.name,
  mode: row.mode,
  prefix: `tg_${row.mode}_${row.lookup_id}`,
  ownerUserId: row.owner_user_id,
  apis: row.apis,
  methods: row.methods,
  allowedCidrs: row.allowed_cidrs,
  limits: limitsFromJson(row.limits),
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  rotatedAt: row.rotated_at,
  previousSecretExpiresAt: row.previous_secret_expires_at,
  lastUsedAt: row.last_used_at,
});

const isUuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);

/**
 * The ids of the APIs named by slug or id; `unknown` lists the names no API has. Reads the registry's
 * `apis` table (services/src/apis) for ids and slugs only.
 */
export async function resolveApiRefs(
  db: Queryable,
  refs: readonly string[],
): Promise<{ ids: string[]; unknown: string[] }> {
  if (refs.length === 0) return { ids: [], unknown: [] };
  const ids = refs.filter(isUuid);
  const result = await db.query<{ id: string; slug: string }>(
    'SELECT id, slug FROM apis WHERE slug = ANY($1::text[]) OR id = ANY($2::uuid[])',
    [refs, ids],
  );
  const found = new Map<string, string>();
  for (const row of result.rows) {
    found.set(row.slug, row.id);
    found.set(row.id, row.id);
  }
  const unknown = refs.filter((ref) => !found.has(ref) && !found.has(ref.toLowerCase()));
  const resolved = refs.flatMap((ref) => found.get(ref) ?? found.get(ref.toLowerCase()) ?? []);
  return { ids: [...new Set(resolved)], unknown };
}

export interface CreateApiKeyInput {
  teamId: string;
  name?: string;
  mode?: KeyMode;
  /** The member the key belongs to; the team alone when absent. */
  ownerUserId?: string;
  /** Ids from resolveApiRefs; empty or absent: every API. */
  apiIds?: readonly string[];
  methods?: readonly KeyMethod[];
  /** Canonical CIDR text (parseCidr, cidrText). */
  allowedCidrs?: readonly string[];
  limits?: KeyLimits;
  expiresAt?: Date;
}

export async function createApiKey(
  tx: Queryable,
  input: CreateApiKeyInput,
): Promise<{ key: string; summary: ApiKeySummary }> {
  const mode = input.mode ?? 'live';
  const lookupId = randomBase62(16);
  const secret = randomBase62(43);
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO api_keys (team_id, owner_user_id, name, mode, lookup_id, secret_sha256, methods, allowed_cidrs,
                           limits, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8::cidr[], $9::jsonb, $10)
     RETURNING id`,
    [
      input.teamId,
      input.ownerUserId ?? null,
      input.name ?? null,
      mode,
      lookupId,
      sha256(secret),
      [...new Set(input.methods ?? [])],
      [...new Set(input.allowedCidrs ?? [])],
      JSON.stringify(limitsFromJson(input.limits ?? {})),
      input.expiresAt ?? null,
    ],
  );
  const id = (inserted.rows[0] as { id: string }).id;
  if (input.apiIds && input.apiIds.length > 0) {
    await tx.query(
      'INSERT INTO api_key_apis (api_key_id, api_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING',
      [id, [...new Set(input.apiIds)]],
    );
  }
  const summary = (await findApiKey(tx, { teamId: input.teamId, keyId: id })) as ApiKeySummary;
  return { key: `tg_${mode}_${lookupId}_${secret}`, summary };
}

export async function listApiKeys(db: Queryable, teamId: string): Promise<ApiKeySummary[]> {
  const result = await db.query<KeyRow>(
    `SELECT ${summaryColumns} FROM api_keys k WHERE k.team_id = $1 ORDER BY k.created_at DESC, k.id`,
    [teamId],
  );
  return result.rows.map(toSummary);
}

/** A key of the team by id, or by its prefix (`tg_live_<id>`); undefined when there is none. */
export async function findApiKey(
  db: Queryable,
  input: { teamId: string; keyId: string },
): Promise<ApiKeySummary | undefined> {
  const lookupId = /^tg_(?:live|test)_([A-Za-z0-9]{8,32})$/.exec(input.keyId)?.[1];
  if (!lookupId && !isUuid(input.keyId)) return undefined;
  const result = await db.query<KeyRow>(
    `SELECT ${summaryColumns} FROM api_keys k WHERE k.team_id = $1 AND ${lookupId ? 'k.lookup_id' : 'k.id'} = $2`,
    [input.teamId, lookupId ?? input.keyId],
  );
  const row = result.rows[0];
  return row ? toSummary(row) : undefined;
}

/**
 * Revokes a key of the team; undefined when there is no such live key. Answers the key's lookup id,
 * which gateways cache the key under and which the caller publishes (KeyEvents) once committed.
 */
export async function revokeApiKey(
  tx: Queryable,
  input: { teamId: string; keyId: string },
): Promise<{ id: string; lookupId: string } | undefined> {
  const key = await findApiKey(tx, input);
  if (!key || key.revokedAt) return undefined;
  const result = await tx.query<{ id: string; lookup_id: string }>(
    `UPDATE api_keys SET revoked_at = now(), previous_secret_sha256 = NULL, previous_secret_expires_at = NULL
     WHERE id = $1 AND revoked_at IS NULL RETURNING id, lookup_id`,
    [key.id],
  );
  const row = result.rows[0];
  return row ? { id: row.id, lookupId: row.lookup_id } : undefined;
}

/**
 * Gives a live key a new secret. The current secret becomes the previous one and keeps working for
 * `graceMs` (0: stops at once); a secret from before an earlier rotation stops now. The lookup id,
 * and so the key's prefix, stays: gateways drop the cached key by it.
 */
export async function rotateApiKey(
  tx: Queryable,
  input: { teamId: string; keyId: string; graceMs: number },
): Promise<{ key: string; summary: ApiKeySummary; lookupId: string } | undefined> {
  const existing = await findApiKey(tx, input);
  if (!existing || existing.revokedAt) return undefined;
  const secret = randomBase62(43);
  const result = await tx.query<{ lookup_id: string; mode: KeyMode }>(
    `UPDATE api_keys SET
       previous_secret_sha256 = CASE WHEN $3::bigint > 0 THEN secret_sha256 END,
       previous_secret_expires_at = CASE WHEN $3::bigint > 0 THEN now() + $3::bigint * interval '1 millisecond' END,
       secret_sha256 = $2, rotated_at = now()
     WHERE id = $1 AND revoked_at IS NULL RETURNING lookup_id, mode`,
    [existing.id, sha256(secret), input.graceMs],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  const summary = (await findApiKey(tx, { teamId: input.teamId, keyId: existing.id })) as ApiKeySummary;
  // In this transaction, so the event exists exactly when the rotation does; never the secret.
  await enqueueTeamEvent(tx, {
    teamId: input.teamId,
    type: 'key.rotated',
    data: {
      key: { id: summary.id, prefix: summary.prefix, name: summary.name, mode: summary.mode },
      rotated_at: summary.rotatedAt?.toISOString() ?? null,
      previous_secret_expires_at: summary.previousSecretExpiresAt?.toISOString() ?? null,
    },
  });
  return { key: `tg_${row.mode}_${row.lookup_id}_${secret}`, summary, lookupId: row.lookup_id };
}

/** What a gateway needs to verify a presented key: the hashes and every restriction. */
export interface StoredApiKey {
  id: string;
  teamId: string;
  ownerUserId: string | null;
  mode: KeyMode;
  lookupId: string;
  secretSha256: Buffer;
  previousSecretSha256: Buffer | null;
  previousSecretExpiresAt: Date | null;
  apiIds: string[];
  methods: KeyMethod[];
  allowedCidrs: string[];
  limits: KeyLimits;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** The gateway's read model of one key, by the `<id>` part of `tg_<mode>_<id>_<secret>`. */
export async function loadKeyForVerification(db: Queryable, lookupId: string): Promise<StoredApiKey | undefined> {
  const result = await db.query<{
    id: string;
    team_id: string;
    owner_user_id: string | null;
    mode: KeyMode;
    lookup_id: string;
    secret_sha256: Uint8Array;
    previous_secret_sha256: Uint8Array | null;
    previous_secret_expires_at: Date | null;
    api_ids: string[];
    methods: KeyMethod[];
    allowed_cidrs: string[];
    limits: unknown;
    expires_at: Date | null;
    revoked_at: Date | null;
  }>(
    `SELECT k.id, k.team_id, k.owner_user_id, k.mode, k.lookup_id, k.secret_sha256, k.previous_secret_sha256,
            k.previous_secret_expires_at, k.methods, k.allowed_cidrs::text[] AS allowed_cidrs, k.limits,
            k.expires_at, k.revoked_at,
            COALESCE((SELECT array_agg(ka.api_id::text) FROM api_key_apis ka WHERE ka.api_key_id = k.id),
                     '{}'::text[]) AS api_ids
     FROM api_keys k WHERE k.lookup_id = $1`,
    [lookupId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    teamId: row.team_id,
    ownerUserId: row.owner_user_id,
    mode: row.mode,
    lookupId: row.lookup_id,
    secretSha256: Buffer.from(row.secret_sha256),
    previousSecretSha256: row.previous_secret_sha256 ? Buffer.from(row.previous_secret_sha256) : null,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    apiIds: row.api_ids,
    methods: row.methods,
    allowedCidrs: row.allowed_cidrs,
    limits: limitsFromJson(row.limits),
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

/** Marks keys as used now; the gateway batches the ids (at most once a minute per key). */
export async function recordKeyUse(db: Queryable, keyIds: readonly string[]): Promise<void> {
  if (keyIds.length === 0) return;
  await db.query('UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1::uuid[])', [keyIds]);
}
