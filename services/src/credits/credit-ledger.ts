import { MAX_BIGINT64 } from '../billing/money.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import { type CreditPool, poolFromKey, poolKey } from './credit-pool.js';

/**
 * A team's prepaid credits (docs/billing.md, "Credits"; migration 0019): an append-only ledger of
 * entries per team and pool, a balance row per pool kept in the same transaction, and what is left
 * of each grant. Every change locks the pool's balance row first (`SELECT ... FOR UPDATE`), so the
 * writers of one pool take turns: a consumer reads the balance only after the one before it has
 * committed, never takes more than it, and `CHECK (balance >= 0)` backs that up. Call the writers
 * inside a transaction (`database.transaction`); a refused input throws before anything is written.
 */

export type CreditEntryKind = 'grant' | 'consumption' | 'expiry' | 'refund_reversal' | 'consumption_reversal';

export interface CreditEntry {
  id: string;
  seq: bigint;
  teamId: string;
  pool: CreditPool;
  kind: CreditEntryKind;
  /** Signed: + for a grant, - (or 0) for a debit; minor units of a currency, or units of a metric. */
  delta: bigint;
  balanceAfter: bigint;
  /** A consumption: what was asked for. */
  requested: bigint | null;
  source: 'pack' | 'operator' | null;
  packId: string | null;
  packSlug: string | null;
  expiresAt: Date | null;
  allocations: { grantEntryId: string; amount: bigint }[];
  reference: string | null;
  reason: string | null;
  idempotencyKey: string;
  createdByUserId: string | null;
  createdAt: Date;
}

interface EntryRow {
  id: string;
  seq: string;
  team_id: string;
  pool: string;
  kind: CreditEntryKind;
  delta: string;
  balance_after: string;
  requested: string | null;
  source: 'pack' | 'operator' | null;
  pack_id: string | null;
  pack_slug: string | null;
  expires_at: Date | null;
  allocations: { grant_entry_id: string; amount: string }[];
  reference: string | null;
  reason: string | null;
  idempotency_key: string;
  created_by_user_id: string | null;
  created_at: Date;
}

const entryColumns = `e.id, e.seq::text, e.team_id, e.pool, e.kind, e.delta::text, e.balance_after::text,
  e.requested::text, e.source, e.pack_id, p.slug AS pack_slug, e.expires_at, e.allocations, e.reference, e.reason,
  e.idempotency_key, e.created_by_user_id, e.created_at`;

function toEntry(row: EntryRow): CreditEntry {
  return {
    id: row.id,
    seq: BigInt(row.seq),
    teamId: row.team_id,
    pool: poolFromKey(row.pool),
    kind: row.kind,
    delta: BigInt(row.delta),
    balanceAfter: BigInt(row.balance_after),
    requested: row.requested === null ? null : BigInt(row.requested),
    source: row.source,
    packId: row.pack_id,
    packSlug: row.pack_slug,
    expiresAt: row.expires_at,
    allocations: row.allocations.map((a) => ({ grantEntryId: a.grant_entry_id, amount: BigInt(a.amount) })),
    reference: row.reference,
    reason: row.reason,
    idempotencyKey: row.idempotency_key,
    createdByUserId: row.created_by_user_id,
    createdAt: row.created_at,
  };
}

async function entryById(tx: Queryable, id: string): Promise<CreditEntry> {
  const result = await tx.query<EntryRow>(
    `SELECT ${entryColumns} FROM credit_entries e LEFT JOIN credit_packs p ON p.id = e.pack_id WHERE e.id = $1`,
    [id],
  );
  return toEntry(result.rows[0] as EntryRow);
}

async function entryByKey(tx: Queryable, teamId: string, idempotencyKey: string): Promise<CreditEntry | undefined> {
  const result = await tx.query<EntryRow>(
    `SELECT ${entryColumns} FROM credit_entries e LEFT JOIN credit_packs p ON p.id = e.pack_id
     WHERE e.team_id = $1 AND e.idempotency_key = $2`,
    [teamId, idempotencyKey],
  );
  return result.rows[0] ? toEntry(result.rows[0]) : undefined;
}

function invalid(path: string, message: string): TollgateError {
  return new TollgateError('validation_failed', `${path}: ${message}`, { details: { issues: [{ path, message }] } });
}

function checkPositive(value: bigint, path: string): void {
  if (typeof value !== 'bigint') throw invalid(path, 'must be a whole number (bigint)');
  if (value <= 0n) throw invalid(path, 'must be more than 0');
  if (value > MAX_BIGINT64) throw invalid(path, 'is too large');
}

function checkKey(idempotencyKey: string): void {
  if (typeof idempotencyKey !== 'string' || idempotencyKey.length < 1 || idempotencyKey.length > 200) {
    throw invalid('idempotency_key', 'from 1 to 200 characters');
  }
}

function conflict(idempotencyKey: string, existing: CreditEntry): TollgateError {
  return new TollgateError(
    'idempotency_conflict',
    `the idempotency key ${JSON.stringify(idempotencyKey)} was used for a different ${existing.kind} (entry ${existing.id})`,
    { hint: 'use a new idempotency key for a new grant or consumption' },
  );
}

interface BalanceRow {
  balance: bigint;
  threshold: bigint | null;
  below: boolean;
}

/**
 * Creates the balance row of a pool if need be and locks it for the rest of the transaction: the
 * one lock every change of the pool takes, so they run one after the other.
 */
async function lockBalance(tx: Queryable, teamId: string, pool: string): Promise<BalanceRow> {
  await tx.query('INSERT INTO credit_balances (team_id, pool) VALUES ($1, $2) ON CONFLICT (team_id, pool) DO NOTHING', [
    teamId,
    pool,
  ]);
  const result = await tx.query<{ balance: string; low_balance_threshold: string | null; below_threshold: boolean }>(
    `SELECT balance::text, low_balance_threshold::text, below_threshold FROM credit_balances
     WHERE team_id = $1 AND pool = $2 FOR UPDATE`,
    [teamId, pool],
  );
  const row = result.rows[0];
  if (!row) throw new Error(`credit balance row of ${teamId}/${pool} vanished under its lock`);
  return {
    balance: BigInt(row.balance),
    threshold: row.low_balance_threshold === null ? null : BigInt(row.low_balance_threshold),
    below: row.below_threshold,
  };
}

async function teamExists(tx: Queryable, teamId: string): Promise<void> {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(teamId);
  const found = uuid ? await tx.query('SELECT 1 FROM teams WHERE id = $1', [teamId]) : { rowCount: 0 };
  if (found.rowCount === 0) throw new TollgateError('not_found', 'no such team');
}

interface NewEntry {
  teamId: string;
  pool: string;
  kind: CreditEntryKind;
  delta: bigint;
  balanceAfter: bigint;
  requested?: bigint;
  source?: 'pack' | 'operator';
  packId?: string | null;
  expiresAt?: Date | null;
  allocations?: { grantEntryId: string; amount: bigint }[];
  reference?: string | null;
  reason?: string | null;
  idempotencyKey: string;
  createdByUserId?: string | null;
  now: Date;
}

async function insertEntry(tx: Queryable, entry: NewEntry): Promise<string> {
  const result = await tx.query<{ id: string }>(
    `INSERT INTO credit_entries (team_id, pool, kind, delta, balance_after, requested, source, pack_id, expires_at,
       allocations, reference, reason, idempotency_key, created_by_user_id, created_at)
     VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15)
     RETURNING id`,
    [
      entry.teamId,
      entry.pool,
      entry.kind,
      String(entry.delta),
      String(entry.balanceAfter),
      entry.requested === undefined ? null : String(entry.requested),
      entry.source ?? null,
      entry.packId ?? null,
      entry.expiresAt ?? null,
      JSON.stringify((entry.allocations ?? []).map((a) => ({ grant_entry_id: a.grantEntryId, amount: `${a.amount}` }))),
      entry.reference ?? null,
      entry.reason ?? null,
      entry.idempotencyKey,
      entry.createdByUserId ?? null,
      entry.now,
    ],
  );
  return (result.rows[0] as { id: string }).id;
}

/**
 * Writes the pool's new balance after a debit and records a low-balance crossing: the first debit
 * that takes the balance below the team's threshold sets `below_threshold` and adds one alert row;
 * later debits while below add none. A grant that lifts the balance back re-arms it.
 */
async function writeBalance(
  tx: Queryable,
  teamId: string,
  pool: string,
  row: BalanceRow,
  balance: bigint,
  entryId: string,
  now: Date,
): Promise<{ lowBalanceCrossed: boolean }> {
  let below = row.below;
  let crossed = false;
  if (row.threshold !== null) {
    if (balance < row.threshold && !row.below && balance < row.balance) {
      below = true;
      crossed = true;
    } else if (balance >= row.threshold) {
      below = false;
    }
  }
  await tx.query(
    `UPDATE credit_balances SET balance = $3::bigint, below_threshold = $4, updated_at = $5
     WHERE team_id = $1 AND pool = $2`,
    [teamId, pool, String(balance), below, now],
  );
  if (crossed) {
    await tx.query(
      `INSERT INTO credit_low_balance_alerts (team_id, pool, threshold, balance, entry_id, crossed_at)
       VALUES ($1, $2, $3::bigint, $4::bigint, $5, $6)`,
      [teamId, pool, String(row.threshold), String(balance), entryId, now],
    );
  }
  row.balance = balance;
  row.below = below;
  return { lowBalanceCrossed: crossed };
}

async function crossedBy(tx: Queryable, entryId: string): Promise<boolean> {
  const result = await tx.query('SELECT 1 FROM credit_low_balance_alerts WHERE entry_id = $1', [entryId]);
  return result.rowCount > 0;
}

export interface GrantCreditsInput {
  teamId: string;
  pool: CreditPool;
  /** minor units of the currency (e.g. cents), or units of the metric; more than 0 */
  amount: bigint;
  source: 'pack' | 'operator';
  packId?: string | null;
  /** When what is left of the grant expires; null or absent: never. */
  expiresAt?: Date | null;
  /** What it is about: a payment intent, an invoice. */
  reference?: string | null;
  reason?: string | null;
  /** Unique per team: a grant retried with the same key changes nothing and returns the first entry. */
  idempotencyKey: string;
  createdByUserId?: string | null;
  now?: Date;
}

export interface GrantResult {
  entry: CreditEntry;
  /** The key had been used: nothing was written, `entry` is the first grant. */
  replayed: boolean;
}

/** Adds credits to a team's pool. */
export async function grantCredits(tx: Queryable, input: GrantCreditsInput): Promise<GrantResult> {
  const pool = poolKey(input.pool);
  checkPositive(input.amount, 'amount');
  checkKey(input.idempotencyKey);
  await teamExists(tx, input.teamId);
  const now = input.now ?? new Date();
  const row = await lockBalance(tx, input.teamId, pool);
  const existing = await entryByKey(tx, input.teamId, input.idempotencyKey);
  if (existing) {
    if (existing.kind !== 'grant' || poolKey(existing.pool) !== pool || existing.delta !== input.amount) {
      throw conflict(input.idempotencyKey, existing);
    }
    return { entry: existing, replayed: true };
  }
  const balance = row.balance + input.amount;
  if (balance > MAX_BIGINT64) throw invalid('amount', 'would take the balance beyond the largest amount stored');
  const expiresAt = input.expiresAt ?? null;
  const entryId = await insertEntry(tx, {
    teamId: input.teamId,
    pool,
    kind: 'grant',
    delta: input.amount,
    balanceAfter: balance,
    source: input.source,
    packId: input.packId ?? null,
    expiresAt,
    reference: input.reference ?? null,
    reason: input.reason ?? null,
    idempotencyKey: input.idempotencyKey,
    createdByUserId: input.createdByUserId ?? null,
    now,
  });
  await tx.query(
    `INSERT INTO credit_grant_remainders (grant_entry_id, team_id, pool, remaining, expires_at)
     VALUES ($1, $2, $3, $4::bigint, $5)`,
    [entryId, input.teamId, pool, String(input.amount), expiresAt],
  );
  await writeBalance(tx, input.teamId, pool, row, balance, entryId, now);
  return { entry: await entryById(tx, entryId), replayed: false };
}

/**
 * Writes off the remainders of the pool's grants that have expired by `now`: one `expiry` entry per
 * grant (idempotency key `expiry:<grant entry id>`). The pool's balance row must be locked.
 */
async function expireLocked(
  tx: Queryable,
  teamId: string,
  pool: string,
  row: BalanceRow,
  now: Date,
): Promise<{ entries: number; expired: bigint; lowBalanceCrossed: boolean }> {
  const lapsed = await tx.query<{ grant_entry_id: string; remaining: string }>(
    `SELECT r.grant_entry_id, r.remaining::text FROM credit_grant_remainders r JOIN credit_entries e ON e.id = r.grant_entry_id
     WHERE r.team_id = $1 AND r.pool = $2 AND r.remaining > 0 AND r.expires_at <= $3
     ORDER BY r.expires_at, e.seq`,
    [teamId, pool, now],
  );
  let expired = 0n;
  let crossed = false;
  for (const lot of lapsed.rows) {
    const amount = BigInt(lot.remaining);
    const balance = row.balance - amount;
    const entryId = await insertEntry(tx, {
      teamId,
      pool,
      kind: 'expiry',
      delta: -amount,
      balanceAfter: balance,
      allocations: [{ grantEntryId: lot.grant_entry_id, amount }],
      reference: lot.grant_entry_id,
      idempotencyKey: `expiry:${lot.grant_entry_id}`,
      now,
    });
    await tx.query('UPDATE credit_grant_remainders SET remaining = 0 WHERE grant_entry_id = $1', [lot.grant_entry_id]);
    const written = await writeBalance(tx, teamId, pool, row, balance, entryId, now);
    crossed ||= written.lowBalanceCrossed;
    expired += amount;
  }
  return { entries: lapsed.rows.length, expired, lowBalanceCrossed: crossed };
}

export interface ConsumeCreditsInput {
  teamId: string;
  pool: CreditPool;
  /** What the caller would like to pay with credits: minor units, or units of the metric; more than 0 */
  wanted: bigint;
  /** What it pays for: an invoice line, a period. */
  reference?: string | null;
  /** Unique per team: a consumption retried with the same key takes nothing more and returns the first result. */
  idempotencyKey: string;
  now?: Date;
}

export interface ConsumeResult {
  entry: CreditEntry;
  /** What was taken: min(wanted, usable balance). The rest is the caller's to invoice. */
  taken: bigint;
  wanted: bigint;
  /** The pool's balance after this consumption. */
  balance: bigint;
  /** This consumption took the balance below the team's low-balance threshold (once per crossing). */
  lowBalanceCrossed: boolean;
  replayed: boolean;
}

/**
 * Pays for up to `wanted` with the team's credits of a pool: takes min(wanted, balance), from the
 * grants that expire first (never-expiring ones last, older before newer), after writing off those
 * that have already expired. The balance row is locked for the whole transaction.
 */
export async function consumeCredits(tx: Queryable, input: ConsumeCreditsInput): Promise<ConsumeResult> {
  const pool = poolKey(input.pool);
  checkPositive(input.wanted, 'wanted');
  checkKey(input.idempotencyKey);
  await teamExists(tx, input.teamId);
  const now = input.now ?? new Date();
  const row = await lockBalance(tx, input.teamId, pool);
  const existing = await entryByKey(tx, input.teamId, input.idempotencyKey);
  if (existing) {
    if (existing.kind !== 'consumption' || poolKey(existing.pool) !== pool || existing.requested !== input.wanted) {
      throw conflict(input.idempotencyKey, existing);
    }
    return {
      entry: existing,
      taken: -existing.delta,
      wanted: input.wanted,
      balance: existing.balanceAfter,
      lowBalanceCrossed: await crossedBy(tx, existing.id),
      replayed: true,
    };
  }
  const expiry = await expireLocked(tx, input.teamId, pool, row, now);
  const lots = await tx.query<{ grant_entry_id: string; remaining: string }>(
    `SELECT r.grant_entry_id, r.remaining::text FROM credit_grant_remainders r JOIN credit_entries e ON e.id = r.grant_entry_id
     WHERE r.team_id = $1 AND r.pool = $2 AND r.remaining > 0
     ORDER BY r.expires_at ASC NULLS LAST, e.seq
     FOR UPDATE OF r`,
    [input.teamId, pool],
  );
  // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigints
  let left = input.wanted < row.balance ? input.wanted : row.balance;
  const allocations: { grantEntryId: string; amount: bigint }[] = [];
  for (const lot of lots.rows) {
    if (left === 0n) break;
    const remaining = BigInt(lot.remaining);
    const amount = remaining < left ? remaining : left;
    allocations.push({ grantEntryId: lot.grant_entry_id, amount });
    await tx.query('UPDATE credit_grant_remainders SET remaining = remaining - $2::bigint WHERE grant_entry_id = $1', [
      lot.grant_entry_id,
      String(amount),
    ]);
    left -= amount;
  }
  // The remainders add up to the balance; if they ever did not, take only what grants can back.
  const taken = allocations.reduce((sum, a) => sum + a.amount, 0n);
  const balance = row.balance - taken;
  const entryId = await insertEntry(tx, {
    teamId: input.teamId,
    pool,
    kind: 'consumption',
    delta: -taken,
    balanceAfter: balance,
    requested: input.wanted,
    allocations,
    reference: input.reference ?? null,
    idempotencyKey: input.idempotencyKey,
    now,
  });
  const written = await writeBalance(tx, input.teamId, pool, row, balance, entryId, now);
  return {
    entry: await entryById(tx, entryId),
    taken,
    wanted: input.wanted,
    balance,
    // A crossing by the expiry written off just before counts as this consumption's: it fires once.
    lowBalanceCrossed: written.lowBalanceCrossed || expiry.lowBalanceCrossed,
    replayed: false,
  };
}

/**
 * Takes back what is left of a grant (a refunded pack purchase): what was already consumed stays
 * consumed. Idempotent by `idempotencyKey`; a grant with nothing left writes a 0 entry.
 */
export async function reverseCreditGrant(
  tx: Queryable,
  input: { teamId: string; grantEntryId: string; reference?: string | null; idempotencyKey: string; now?: Date },
): Promise<{ entry: CreditEntry; reversed: bigint; replayed: boolean }> {
  checkKey(input.idempotencyKey);
  const grant = await tx.query<{ pool: string }>(
    "SELECT pool FROM credit_entries WHERE id = $1 AND team_id = $2 AND kind = 'grant'",
    [input.grantEntryId, input.teamId],
  );
  const pool = grant.rows[0]?.pool;
  if (!pool) throw new TollgateError('not_found', 'no such credit grant');
  const now = input.now ?? new Date();
  const row = await lockBalance(tx, input.teamId, pool);
  const existing = await entryByKey(tx, input.teamId, input.idempotencyKey);
  if (existing) {
    if (existing.kind !== 'refund_reversal') throw conflict(input.idempotencyKey, existing);
    return { entry: existing, reversed: -existing.delta, replayed: true };
  }
  const remainder = await tx.query<{ remaining: string }>(
    'SELECT remaining::text FROM credit_grant_remainders WHERE grant_entry_id = $1 FOR UPDATE',
    [input.grantEntryId],
  );
  const amount = BigInt(remainder.rows[0]?.remaining ?? '0');
  const balance = row.balance - amount;
  const entryId = await insertEntry(tx, {
    teamId: input.teamId,
    pool,
    kind: 'refund_reversal',
    delta: -amount,
    balanceAfter: balance,
    // The grant is named even when nothing was left of it: giving back a consumption later
    // (reverseConsumption) must know the grant was taken back and return nothing to it.
    allocations: [{ grantEntryId: input.grantEntryId, amount }],
    reference: input.reference ?? input.grantEntryId,
    idempotencyKey: input.idempotencyKey,
    now,
  });
  await tx.query('UPDATE credit_grant_remainders SET remaining = 0 WHERE grant_entry_id = $1', [input.grantEntryId]);
  await writeBalance(tx, input.teamId, pool, row, balance, entryId, now);
  return { entry: await entryById(tx, entryId), reversed: amount, replayed: false };
}

/**
 * Gives back a consumption (an invoice voided after its period close took credits): each amount
 * returns to the grant it was taken from, keeping that grant's expiry, as if it had never been
 * consumed. So the part of a grant that has expired by `now`, or that a refund has taken back since,
 * is not given back: it would have lapsed or been reversed with the grant. One
 * `consumption_reversal` entry (positive, possibly 0), idempotent by `idempotencyKey`.
 */
export async function reverseConsumption(
  tx: Queryable,
  input: {
    teamId: string;
    consumptionEntryId: string;
    reference?: string | null;
    reason?: string | null;
    idempotencyKey: string;
    createdByUserId?: string | null;
    now?: Date;
  },
): Promise<{ entry: CreditEntry; restored: bigint; replayed: boolean }> {
  checkKey(input.idempotencyKey);
  const found = await tx.query<{ pool: string }>(
    "SELECT pool FROM credit_entries WHERE id = $1 AND team_id = $2 AND kind = 'consumption'",
    [input.consumptionEntryId, input.teamId],
  );
  const pool = found.rows[0]?.pool;
  if (!pool) throw new TollgateError('not_found', 'no such credit consumption');
  const now = input.now ?? new Date();
  const row = await lockBalance(tx, input.teamId, pool);
  const existing = await entryByKey(tx, input.teamId, input.idempotencyKey);
  if (existing) {
    if (existing.kind !== 'consumption_reversal') throw conflict(input.idempotencyKey, existing);
    return { entry: existing, restored: existing.delta, replayed: true };
  }
  const consumption = await entryById(tx, input.consumptionEntryId);
  const restoredTo: { grantEntryId: string; amount: bigint }[] = [];
  for (const allocation of consumption.allocations) {
    if (allocation.amount <= 0n) continue;
    const lot = await tx.query<{ expires_at: Date | null }>(
      'SELECT expires_at FROM credit_grant_remainders WHERE grant_entry_id = $1 FOR UPDATE',
      [allocation.grantEntryId],
    );
    const expiresAt = lot.rows[0]?.expires_at;
    if (expiresAt === undefined || (expiresAt !== null && expiresAt <= now)) continue;
    const reversed = await tx.query(
      `SELECT 1 FROM credit_entries WHERE team_id = $1 AND kind = 'refund_reversal'
       AND allocations @> jsonb_build_array(jsonb_build_object('grant_entry_id', $2::text))`,
      [input.teamId, allocation.grantEntryId],
    );
    if (reversed.rowCount > 0) continue;
    await tx.query('UPDATE credit_grant_remainders SET remaining = remaining + $2::bigint WHERE grant_entry_id = $1', [
      allocation.grantEntryId,
      String(allocation.amount),
    ]);
    restoredTo.push(allocation);
  }
  const restored = restoredTo.reduce((sum, a) => sum + a.amount, 0n);
  const balance = row.balance + restored;
  const entryId = await insertEntry(tx, {
    teamId: input.teamId,
    pool,
    kind: 'consumption_reversal',
    delta: restored,
    balanceAfter: balance,
    requested: -consumption.delta,
    allocations: restoredTo,
    reference: input.reference ?? consumption.reference,
    reason: input.reason ?? null,
    idempotencyKey: input.idempotencyKey,
    createdByUserId: input.createdByUserId ?? null,
    now,
  });
  await writeBalance(tx, input.teamId, pool, row, balance, entryId, now);
  return { entry: await entryById(tx, entryId), restored, replayed: false };
}

/**
 * The job: writes off every expired remainder, one transaction per team and pool, so it can run
 * (and be re-run) at any time next to consumers. Returns what it wrote.
 */
export async function expireCredits(
  db: Database,
  now: Date = new Date(),
): Promise<{ entries: number; pools: { teamId: string; pool: CreditPool; expired: bigint }[] }> {
  const due = await db.query<{ team_id: string; pool: string }>(
    `SELECT DISTINCT team_id, pool FROM credit_grant_remainders
     WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY team_id, pool`,
    [now],
  );
  let entries = 0;
  const pools: { teamId: string; pool: CreditPool; expired: bigint }[] = [];
  for (const { team_id: teamId, pool } of due.rows) {
    const result = await db.transaction(async (tx) => {
      const row = await lockBalance(tx, teamId, pool);
      return expireLocked(tx, teamId, pool, row, now);
    });
    entries += result.entries;
    if (result.entries > 0) pools.push({ teamId, pool: poolFromKey(pool), expired: result.expired });
  }
  return { entries, pools };
}

export interface CreditBalance {
  pool: CreditPool;
  /** What can be used now: expired remainders not yet written off by the job are left out. */
  balance: bigint;
  lowBalanceThreshold: bigint | null;
  belowThreshold: boolean;
  /** The next grant remainder to expire, if any. */
  nextExpiry: { at: Date; amount: bigint } | null;
}

/** Every pool the team has held credits in or set a threshold for, currencies first. */
export async function creditBalance(db: Queryable, teamId: string, now: Date = new Date()): Promise<CreditBalance[]> {
  const result = await db.query<{
    pool: string;
    balance: string;
    lapsed: string;
    low_balance_threshold: string | null;
    below_threshold: boolean;
    next_at: Date | null;
    next_amount: string | null;
  }>(
    `SELECT b.pool, b.balance::text, b.low_balance_threshold::text, b.below_threshold,
       (SELECT coalesce(sum(r.remaining), 0)::text FROM credit_grant_remainders r
        WHERE r.team_id = b.team_id AND r.pool = b.pool AND r.remaining > 0 AND r.expires_at <= $2) AS lapsed,
       n.expires_at AS next_at, n.amount::text AS next_amount
     FROM credit_balances b
     LEFT JOIN LATERAL (
       SELECT r.expires_at, sum(r.remaining) AS amount FROM credit_grant_remainders r
       WHERE r.team_id = b.team_id AND r.pool = b.pool AND r.remaining > 0 AND r.expires_at > $2
       GROUP BY r.expires_at ORDER BY r.expires_at LIMIT 1
     ) n ON true
     WHERE b.team_id = $1
     ORDER BY (b.pool ~ '^[A-Z]'), b.pool`,
    [teamId, now],
  );
  return result.rows
    .map((row) => ({
      pool: poolFromKey(row.pool),
      balance: BigInt(row.balance) - BigInt(row.lapsed),
      lowBalanceThreshold: row.low_balance_threshold === null ? null : BigInt(row.low_balance_threshold),
      belowThreshold: row.below_threshold,
      nextExpiry:
        row.next_at === null || row.next_amount === null ? null : { at: row.next_at, amount: BigInt(row.next_amount) },
    }))
    .sort((a, b) => Number('metric' in a.pool) - Number('metric' in b.pool));
}

/** The team's ledger, newest first, `limit` at a time; `before` is the `seq` of the last one seen. */
export async function listCreditEntries(
  db: Queryable,
  teamId: string,
  options: { limit: number; before?: bigint },
): Promise<{ entries: CreditEntry[]; nextBefore: bigint | null }> {
  const result = await db.query<EntryRow>(
    `SELECT ${entryColumns} FROM credit_entries e LEFT JOIN credit_packs p ON p.id = e.pack_id
     WHERE e.team_id = $1 AND ($2::bigint IS NULL OR e.seq < $2::bigint)
     ORDER BY e.seq DESC LIMIT $3`,
    [teamId, options.before === undefined ? null : String(options.before), options.limit + 1],
  );
  const entries = result.rows.slice(0, options.limit).map(toEntry);
  const last = entries.at(-1);
  return { entries, nextBefore: result.rows.length > options.limit && last ? last.seq : null };
}

/**
 * Sets (or with null, removes) the team's low-balance threshold of a pool. Setting it arms the alert
 * for the next crossing: a balance already below it is marked below without an alert (the team just
 * saw it), so the alert fires when a debit takes it below after a grant has lifted it back.
 */
export async function setLowBalanceThreshold(
  tx: Queryable,
  input: { teamId: string; pool: CreditPool; threshold: bigint | null },
): Promise<CreditBalance> {
  const pool = poolKey(input.pool);
  if (input.threshold !== null) checkPositive(input.threshold, 'below');
  await teamExists(tx, input.teamId);
  const row = await lockBalance(tx, input.teamId, pool);
  const below = input.threshold !== null && row.balance < input.threshold;
  await tx.query(
    `UPDATE credit_balances SET low_balance_threshold = $3::bigint, below_threshold = $4, updated_at = now()
     WHERE team_id = $1 AND pool = $2`,
    [input.teamId, pool, input.threshold === null ? null : String(input.threshold), below],
  );
  const balances = await creditBalance(tx, input.teamId);
  return balances.find((balance) => poolKey(balance.pool) === pool) as CreditBalance;
}

/** Low-balance crossings not yet delivered, oldest first: for the usage-alert delivery. */
export async function pendingLowBalanceAlerts(
  db: Queryable,
): Promise<{ id: string; teamId: string; pool: CreditPool; threshold: bigint; balance: bigint; crossedAt: Date }[]> {
  const result = await db.query<{
    id: string;
    team_id: string;
    pool: string;
    threshold: string;
    balance: string;
    crossed_at: Date;
  }>(
    `SELECT id, team_id, pool, threshold::text, balance::text, crossed_at FROM credit_low_balance_alerts
     WHERE delivered_at IS NULL ORDER BY crossed_at, id`,
  );
  return result.rows.map((row) => ({
    id: row.id,
    teamId: row.team_id,
    pool: poolFromKey(row.pool),
    threshold: BigInt(row.threshold),
    balance: BigInt(row.balance),
    crossedAt: row.crossed_at,
  }));
}
