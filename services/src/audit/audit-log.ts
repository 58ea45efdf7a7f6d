import { createHash, createHmac, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';

// actor_label, ip and user_agent are personal data. The hash chain forbids editing them in place, so
// erasure (GDPR) needs its own design, e.g. storing keyed pseudonyms here and the personal data in a
// separate, deletable table.

export type AuditOutcome = 'success' | 'denied' | 'failure';

export const auditOutcomes: readonly AuditOutcome[] = ['success', 'denied', 'failure'];

export interface AuditEntryInput {
  /** The acting user; absent for the system and for anonymous callers (e.g. a failed login). */
  actorUserId?: string;
  /** Who acted as known at the time: the user's email, 'system' or 'anonymous'. Cut to 320 characters. */
  actorLabel: string;
  /** Dotted lower-case name, e.g. 'auth.login_failed', 'team.member_invited'. */
  action: string;
  outcome: AuditOutcome;
  targetType?: string;
  targetId?: string;
  teamId?: string;
  /**
   * The caller's address. Text that is not an IP address (it can come from a forwarded header) is
   * not refused, which would lose the entry: it is kept in `details.ip_unparsed` and `ip` is null.
   */
  ip?: string;
  /** Cut to 512 characters. */
  userAgent?: string;
  requestId?: string;
  /** Stored as JSON (`undefined` values dropped, dates as ISO strings, as JSON.stringify does). */
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  /** Position in the chain: contiguous from 1. */
  seq: number;
  id: string;
  occurredAt: Date;
  actorUserId: string | null;
  actorLabel: string;
  action: string;
  outcome: AuditOutcome;
  targetType: string | null;
  targetId: string | null;
  teamId: string | null;
  /** As PostgreSQL prints an inet, e.g. '2001:db8::1'. */
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
  /** SHA-256 hex of the previous entry; 64 zeros for the first. */
  prevHash: string;
  hash: string;
}

export type AuditChainVerification =
  | { ok: true; entries: number }
  | {
      ok: false;
      /** Entries that verified before the break. */
      entries: number;
      /** The first seq that is wrong or missing. */
      brokenAt: number;
      reason: string;
    };

export interface AuditEntryFilter {
  /** Inclusive. */
  since?: Date;
  /** Exclusive. */
  until?: Date;
  actorUserId?: string;
  /** An exact action, or a prefix ending in '*': 'auth.*'. */
  action?: string;
  teamId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
  /** Only entries older than this seq: pass the last seq of a page to get the next one. */
  beforeSeq?: number;
}

/** The prev_hash of the first entry. */
export const genesisHash = '0'.repeat(64);

const defaultListLimit = 100;
const maxListLimit = 1000;
const verifyPageSize = 1000;

const maxLabelLength = 320;
const maxUserAgentLength = 512;
const maxRequestIdLength = 128;
const maxUnparsedIpLength = 200;

const actionPattern = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The row as both drivers return it (int8 as a string, timestamptz as a Date, jsonb parsed). */
interface AuditRow {
  seq: string;
  id: string;
  occurred_at: Date;
  actor_user_id: string | null;
  actor_label: string;
  action: string;
  outcome: AuditOutcome;
  target_type: string | null;
  target_id: string | null;
  team_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

interface ChainHeadRow {
  last_seq: string;
  last_hash: string;
}

const auditColumns =
  'seq, id, occurred_at, actor_user_id, actor_label, action, outcome, target_type, target_id, team_id, ' +
  'ip, user_agent, request_id, details, prev_hash, hash';

/**
 * PostgreSQL refuses NUL in text and jsonb, and the drivers turn a lone UTF-16 surrogate into U+FFFD
 * on the way in: doing both here keeps what is hashed equal to what is stored, and keeps text an
 * attacker controls (a login email, a user agent) from making the entry fail.
 */
function storableText(text: string, maxLength = Number.POSITIVE_INFINITY): string {
  return text.slice(0, maxLength).replaceAll('\0', '\uFFFD').replace(loneSurrogate, '\uFFFD');
}

function storableJson(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(storableJson);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [storableText(key), storableJson(item)]));
  }
  return value;
}

/** JSON with object keys sorted at every depth, so jsonb's own key order does not change the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const members = Object.keys(object)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * SHA-256 hex of the previous hash, a newline and the canonical JSON of every stored column but
 * `hash`. Changing this breaks the verification of every existing entry: never do it without a
 * versioned successor.
 */
function entryHash(row: Omit<AuditRow, 'hash'>): string {
  const fields = {
    seq: row.seq,
    id: row.id,
    occurred_at: row.occurred_at.toISOString(),
    actor_user_id: row.actor_user_id,
    actor_label: row.actor_label,
    action: row.action,
    outcome: row.outcome,
    target_type: row.target_type,
    target_id: row.target_id,
    team_id: row.team_id,
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    details: row.details,
    prev_hash: row.prev_hash,
  };
  return createHash('sha256')
    .update(`${row.prev_hash}\n${canonicalJson(fields)}`)
    .digest('hex');
}

function toEntry(row: AuditRow): AuditEntry {
  return {
    seq: Number(row.seq),
    id: row.id,
    occurredAt: row.occurred_at,
    actorUserId: row.actor_user_id,
    actorLabel: row.actor_label,
    action: row.action,
    outcome: row.outcome,
    targetType: row.target_type,
    targetId: row.target_id,
    teamId: row.team_id,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

// A malformed action, outcome or id is a bug in the calling code, not bad input from a user: it is a
// TypeError, which reaches the edge as an internal error.
function optionalUuid(value: string | undefined, field: string): string | null {
  if (value === undefined) return null;
  if (!uuidPattern.test(value)) throw new TypeError(`audit entry ${field} is not a UUID: ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

function optionalText(value: string | undefined, maxLength?: number): string | null {
  return value === undefined ? null : storableText(value, maxLength);
}

/** The address without an IPv6 zone (`fe80::1%eth0`), which inet cannot hold; null when not an address. */
function parseableIp(ip: string): string | null {
  const address = ip.includes(':') ? ip.replace(/%.*$/, '') : ip;
  return isIP(address) === 0 ? null : address;
}

/**
 * Appends one entry to the audit log and returns it as stored.
 *
 * Call it inside the transaction of the action it records (`db.transaction(tx => ...)`), so the entry
 * commits or rolls back with that action; for an entry without a write of its own (a failed login, a
 * denial) use `recordAudit`. The transaction must use READ COMMITTED (the default): appends queue on
 * a lock of the chain head row, which is what makes seq contiguous and the chain a single line, and it
 * is held until the transaction ends, so keep the transaction short after appending.
 */
export async function appendAuditEntry(tx: Queryable, input: AuditEntryInput): Promise<AuditEntry> {
  if (!actionPattern.test(input.action)) {
    throw new TypeError(`audit action ${JSON.stringify(input.action)} is not dotted lower-case, e.g. 'auth.login'`);
  }
  if (!auditOutcomes.includes(input.outcome)) {
    throw new TypeError(`audit outcome ${JSON.stringify(input.outcome)} is not one of ${auditOutcomes.join(', ')}`);
  }
  const actorLabel = storableText(input.actorLabel, maxLabelLength);
  if (actorLabel.trim() === '') throw new TypeError(`audit actorLabel is empty: use 'anonymous' or 'system'`);
  const actorUserId = optionalUuid(input.actorUserId, 'actorUserId');
  const teamId = optionalUuid(input.teamId, 'teamId');

  const detailsJson = JSON.parse(JSON.stringify(input.details ?? {})) as unknown;
  if (detailsJson === null || typeof detailsJson !== 'object' || Array.isArray(detailsJson)) {
    throw new TypeError('audit details must be a JSON object');
  }
  const details = storableJson(detailsJson) as Record<string, unknown>;

  let ip: string | null = null;
  if (input.ip !== undefined) {
    const address = parseableIp(input.ip);
    if (address === null) {
      details.ip_unparsed = storableText(input.ip, maxUnparsedIpLength);
    } else {
      // Hash the address the way PostgreSQL will print it back ('2001:DB8:0::1' -> '2001:db8::1').
      const printed = await tx.query<{ ip: string }>('SELECT $1::inet AS ip', [address]);
      ip = printed.rows[0]?.ip ?? null;
    }
  }

  const head = await lockChainHead(tx);
  const fields: Omit<AuditRow, 'hash'> = {
    seq: (BigInt(head.last_seq) + 1n).toString(),
    id: randomUUID(),
    // Taken under the lock, so time follows seq (on one clock); a JS Date has the millisecond
    // precision that makes its ISO text, which is hashed, survive the round trip through timestamptz.
    occurred_at: new Date(),
    actor_user_id: actorUserId,
    actor_label: actorLabel,
    action: input.action,
    outcome: input.outcome,
    target_type: optionalText(input.targetType),
    target_id: optionalText(input.targetId),
    team_id: teamId,
    ip,
    user_agent: optionalText(input.userAgent, maxUserAgentLength),
    request_id: optionalText(input.requestId, maxRequestIdLength),
    details,
    prev_hash: head.last_hash,
  };
  const hash = entryHash(fields);
  const inserted = await tx.query<AuditRow>(
    `INSERT INTO audit_log (${auditColumns})
     VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $8, $9, $10, $11::inet, $12, $13, $14::jsonb, $15, $16)
     RETURNING ${auditColumns}`,
    [
      fields.seq,
      fields.id,
      fields.occurred_at.toISOString(),
      fields.actor_user_id,
      fields.actor_label,
      fields.action,
      fields.outcome,
      fields.target_type,
      fields.target_id,
      fields.team_id,
      fields.ip,
      fields.user_agent,
      fields.request_id,
      JSON.stringify(fields.details),
      fields.prev_hash,
      hash,
    ],
  );
  const row = inserted.rows[0];
  // An entry that would fail verification must not be written: throwing rolls back the action too.
  if (!row || entryHash(row) !== hash) {
    throw new Error(`audit entry ${fields.seq} (${input.action}) does not read back as it was hashed`);
  }
  await tx.query('UPDATE audit_chain_head SET last_seq = $1, last_hash = $2 WHERE id', [fields.seq, hash]);
  return toEntry(row);
}

async function lockChainHead(tx: Queryable): Promise<ChainHeadRow> {
  const select = 'SELECT last_seq, last_hash FROM audit_chain_head WHERE id FOR UPDATE';
  const head = (await tx.query<ChainHeadRow>(select)).rows[0];
  if (head) return head;
  // First append ever. Two first appends at once: the second INSERT waits for the first to commit,
  // does nothing, and its SELECT then sees (and waits for) the row the first one created.
  const created = await tx.query(
    'INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (true, 0, $1) ON CONFLICT (id) DO NOTHING',
    [genesisHash],
  );
  if (created.rowCount > 0) {
    const existing = await tx.query('SELECT 1 FROM audit_log LIMIT 1');
    if (existing.rowCount > 0) {
      throw new TollgateError('audit_chain_broken', 'the audit log has entries but its chain head row is missing', {
        hint: 'run `tollgate audit verify`, then restore the audit_chain_head row from a backup',
      });
    }
  }
  const locked = (await tx.query<ChainHeadRow>(select)).rows[0];
  if (!locked) throw new Error('the audit chain head row vanished while being created');
  return locked;
}

/** Appends an entry in a transaction of its own: for events with no write to go with (failed logins, denials). */
export function recordAudit(db: Database, input: AuditEntryInput): Promise<AuditEntry> {
  return db.transaction((tx) => appendAuditEntry(tx, input));
}

/**
 * Recomputes the chain from the first entry and compares the end with the chain head, reading 1000
 * entries at a time. Reports the first broken seq. It proves the log was not changed by anyone who
 * could not also recompute every later hash and the head; anchoring the head hash outside the
 * database is what would catch that.
 */
export async function verifyAuditChain(db: Queryable): Promise<AuditChainVerification> {
  let verified = 0;
  let lastSeq = 0n;
  let lastHash = genesisHash;
  const broken = (seq: bigint, reason: string): AuditChainVerification => ({
    ok: false,
    entries: verified,
    brokenAt: Number(seq),
    reason,
  });

  for (;;) {
    // Keep walking until the head is not ahead of the last entry seen: an entry and its head update
    // commit together, so a head ahead of the entries is either a concurrent append (walk on) or a
    // deletion of the newest entries (nothing more to read).
    let page: AuditRow[];
    do {
      page = (
        await db.query<AuditRow>(
          `SELECT ${auditColumns} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT ${verifyPageSize}`,
          [lastSeq.toString()],
        )
      ).rows;
      for (const row of page) {
        const seq = BigInt(row.seq);
        if (seq !== lastSeq + 1n) return broken(seq, 'gap before this entry (entries were deleted)');
        if (entryHash(row) !== row.hash) return broken(seq, 'hash mismatch (the entry was changed)');
        if (row.prev_hash !== lastHash) return broken(seq, 'prev_hash does not match the previous entry');
        verified++;
        lastSeq = seq;
        lastHash = row.hash;
      }
    } while (page.length === verifyPageSize);

    const head = (await db.query<ChainHeadRow>('SELECT last_seq, last_hash FROM audit_chain_head WHERE id')).rows[0];
    if (!head) {
      if (verified === 0) return { ok: true, entries: 0 };
      return broken(lastSeq + 1n, `the chain head is missing, so entries after seq ${lastSeq} may have been deleted`);
    }
    const headSeq = BigInt(head.last_seq);
    if (headSeq > lastSeq) {
      const more = await db.query('SELECT 1 FROM audit_log WHERE seq > $1 LIMIT 1', [lastSeq.toString()]);
      if (more.rowCount > 0) continue;
      return broken(lastSeq + 1n, `entries after seq ${lastSeq} were deleted (chain head says ${headSeq})`);
    }
    if (headSeq < lastSeq) {
      return broken(
        headSeq + 1n,
        `entries after seq ${headSeq} are not in the chain head (inserted outside the audit log code, or the head was rolled back)`,
      );
    }
    if (head.last_hash !== lastHash) {
      return broken(lastSeq, 'the chain head hash does not match this entry (the entry was replaced)');
    }
    return { ok: true, entries: verified };
  }
}

function filterUuid(value: string, field: string): string {
  if (!uuidPattern.test(value)) {
    throw new TollgateError('validation_failed', `${field} must be a UUID`, { details: { field } });
  }
  return value.toLowerCase();
}

function filterPositiveInteger(value: number, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new TollgateError('validation_failed', `${field} must be a whole number from 1 to ${max}`, {
      details: { field },
    });
  }
  return value;
}

function filterDate(value: Date, field: string): string {
  if (Number.isNaN(value.getTime())) {
    throw new TollgateError('validation_failed', `${field} is not a valid date`, { details: { field } });
  }
  return value.toISOString();
}

/** Entries matching every given filter, newest first. */
export async function listAuditEntries(db: Queryable, filter: AuditEntryFilter = {}): Promise<AuditEntry[]> {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const where = (condition: (placeholder: string) => string, value: unknown) => {
    params.push(value);
    conditions.push(condition(`$${params.length}`));
  };
  if (filter.since !== undefined) where((p) => `occurred_at >= ${p}::timestamptz`, filterDate(filter.since, 'since'));
  if (filter.until !== undefined) where((p) => `occurred_at < ${p}::timestamptz`, filterDate(filter.until, 'until'));
  if (filter.actorUserId !== undefined) {
    where((p) => `actor_user_id = ${p}`, filterUuid(filter.actorUserId, 'actorUserId'));
  }
  if (filter.teamId !== undefined) where((p) => `team_id = ${p}`, filterUuid(filter.teamId, 'teamId'));
  if (filter.action !== undefined) {
    if (filter.action.endsWith('*')) {
      const prefix = filter.action.slice(0, -1).replace(/[\\%_]/g, '\\$&');
      where((p) => `action LIKE ${p} ESCAPE '\\'`, `${prefix}%`);
    } else {
      where((p) => `action = ${p}`, filter.action);
    }
  }
  if (filter.beforeSeq !== undefined) {
    where((p) => `seq < ${p}`, filterPositiveInteger(filter.beforeSeq, 'beforeSeq'));
  }
  const limit = filterPositiveInteger(filter.limit ?? defaultListLimit, 'limit', maxListLimit);
  const result = await db.query<AuditRow>(
    `SELECT ${auditColumns} FROM audit_log
     ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
     ORDER BY seq DESC LIMIT ${limit}`,
    params,
  );
  return result.rows.map(toEntry);
}

/**
 * Audit entries name people by account id (`user:<id>`), never by email, so erasing an account
 * (which blanks the email beside the id) leaves the kept entries pseudonymous. Emails that are not
 * an account (a failed login's typed address, an invitee) are stored as this keyed hash: entries
 * about the same address can still be matched, but the address cannot be read back without the
 * master key.
 */
export function emailPseudonym(key: Buffer, email: string): string {
  return `email:${createHmac('sha256', key).update(email.trim().toLowerCase()).digest('hex').slice(0, 32)}`;
}

/** How an audit entry names a user who acts. */
export function userLabel(userId: string): string {
  return `user:${userId}`;
}
