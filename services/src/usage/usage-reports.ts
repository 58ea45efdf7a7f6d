import { createHash } from 'node:crypto';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import { periodStart } from './usage-rollups.js';

/** Metric names: lowercase letters, digits and `_`, starting with a letter, at most 63 characters. */
export const metricPattern = /^[a-z][a-z0-9_]{0,62}$/;

/** Idempotency keys are deduplicated at least this long (ARCHITECTURE.md / issue 4: 30 days)... */
export const usageIdempotencyGuaranteeMs = 30 * 86_400_000;
/** ...and pruned after this, so a key is never forgotten early by a prune that runs late. */
export const usageIdempotencyRetentionMs = 35 * 86_400_000;
/**
 * An event's `at` may be at most this far in the past: a report of older usage could be a replay
 * whose idempotency key was already pruned, so it is refused instead of being counted twice.
 */
export const usageReportMaxAgeMs = usageIdempotencyGuaranteeMs;
/** ...and at most this far in the future (reporters' clocks drift). */
export const usageReportMaxSkewMs = 5 * 60_000;

export interface UsageReportInput {
  teamId: string;
  metric: string;
  /** A non-negative integer: a count (emails_sent) or a reading (storage_bytes). */
  quantity: number;
  /** When the usage happened; when it was received when absent. */
  at?: Date | undefined;
  idempotencyKey: string;
}

export interface UsageEvent {
  id: string;
  teamId: string;
  metric: string;
  quantity: number;
  at: Date;
  idempotencyKey: string;
  createdAt: Date;
}

export interface ReportedUsage {
  event: UsageEvent;
  /** The key was seen before with the same body: this is the original event, nothing was added. */
  replayed: boolean;
}

/** The fingerprint of a report: what a replay must repeat exactly. */
function requestHash(input: UsageReportInput): Buffer {
  const canonical = JSON.stringify([input.teamId, input.metric, input.quantity, input.at?.toISOString() ?? null]);
  return createHash('sha256').update(canonical).digest();
}

interface EventRow {
  id: string;
  team_id: string;
  metric: string;
  quantity: string;
  occurred_at: Date;
  idempotency_key: string;
  created_at: Date;
}

const eventOf = (row: EventRow): UsageEvent => ({
  id: row.id,
  teamId: row.team_id,
  metric: row.metric,
  quantity: Number(row.quantity),
  at: row.occurred_at,
  idempotencyKey: row.idempotency_key,
  createdAt: row.created_at,
});

function checkReport(input: UsageReportInput, index: number, now: number): void {
  const where = `events.${index}`;
  if (!metricPattern.test(input.metric)) {
    throw new TollgateError('validation_failed', `${where}.metric: use ^[a-z][a-z0-9_]{0,62}$`);
  }
  if (!Number.isSafeInteger(input.quantity) || input.quantity < 0) {
    throw new TollgateError('validation_failed', `${where}.quantity: a whole number from 0 to 2^53 - 1`);
  }
  if (input.at) {
    const at = input.at.getTime();
    if (at < now - usageReportMaxAgeMs || at > now + usageReportMaxSkewMs) {
      throw new TollgateError(
        'usage_event_out_of_range',
        `${where}.at: usage must be reported within 30 days of when it happened, and not ahead of time`,
        { details: { index, at: input.at.toISOString() } },
      );
    }
  }
}

/**
 * Records reported usage: each event once per (team, idempotency key). In one transaction: a key
 * seen with the same body answers its original event (nothing added), a key seen with another body
 * refuses the whole request with 409 `idempotency_conflict` (nothing written). New events go into
 * `usage_events` and are added to `usage_metric_day`.
 */
export async function reportUsage(
  database: Database,
  input: { reports: readonly UsageReportInput[]; reportedByUserId?: string | undefined; now?: Date },
): Promise<ReportedUsage[]> {
  const now = input.now ?? new Date();
  for (const [index, report] of input.reports.entries()) checkReport(report, index, now.getTime());
  return database.transaction(async (tx) => {
    const answers: ReportedUsage[] = [];
    for (const [index, report] of input.reports.entries()) {
      const hash = requestHash(report);
      const at = report.at ?? now;
      // Claim the key first: a concurrent request with the same key waits here for this one to end,
      // then finds the key taken.
      const claimed = await tx.query<{ event_id: string }>(
        `INSERT INTO usage_idempotency_keys (team_id, idempotency_key, request_sha256, event_id, created_at)
         VALUES ($1, $2, $3, gen_random_uuid(), $4)
         ON CONFLICT (team_id, idempotency_key) DO NOTHING RETURNING event_id`,
        [report.teamId, report.idempotencyKey, hash, now],
      );
      const eventId = claimed.rows[0]?.event_id;
      if (eventId === undefined) {
        answers.push({ event: await replay(tx, report, hash, index), replayed: true });
        continue;
      }
      const inserted = await tx.query<EventRow>(
        `INSERT INTO usage_events (id, team_id, metric, quantity, occurred_at, idempotency_key, reported_by_user_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, team_id, metric, quantity, occurred_at, idempotency_key, created_at`,
        [
          eventId,
          report.teamId,
          report.metric,
          report.quantity,
          at,
          report.idempotencyKey,
          input.reportedByUserId ?? null,
          now,
        ],
      );
      await tx.query(
        `INSERT INTO usage_metric_day AS m (period_start, team_id, metric, events, quantity_sum, quantity_max, last_quantity, last_at)
         VALUES ($1, $2, $3, 1, $4, $4, $4, $5)
         ON CONFLICT (team_id, period_start, metric) DO UPDATE SET
           events = m.events + 1,
           quantity_sum = m.quantity_sum + excluded.quantity_sum,
           quantity_max = GREATEST(m.quantity_max, excluded.quantity_max),
           last_quantity = CASE WHEN excluded.last_at >= m.last_at THEN excluded.last_quantity ELSE m.last_quantity END,
           last_at = GREATEST(m.last_at, excluded.last_at)`,
        [new Date(periodStart(at.getTime(), 'day')), report.teamId, report.metric, report.quantity, at],
      );
      answers.push({ event: eventOf(inserted.rows[0] as EventRow), replayed: false });
    }
    return answers;
  });
}

async function replay(tx: Queryable, report: UsageReportInput, hash: Buffer, index: number): Promise<UsageEvent> {
  const found = await tx.query<EventRow & { request_sha256: Buffer | Uint8Array }>(
    `SELECT e.id, e.team_id, e.metric, e.quantity, e.occurred_at, e.idempotency_key, e.created_at, k.request_sha256
     FROM usage_idempotency_keys k JOIN usage_events e ON e.id = k.event_id
     WHERE k.team_id = $1 AND k.idempotency_key = $2`,
    [report.teamId, report.idempotencyKey],
  );
  const row = found.rows[0];
  if (!row || !Buffer.from(row.request_sha256).equals(hash)) {
    throw new TollgateError(
      'idempotency_conflict',
      `events.${index}.idempotency_key: this key was used before with a different body`,
      {
        details: { index, idempotency_key: report.idempotencyKey },
        hint: 'send the original body again to get its result, or use a new idempotency key for new usage',
      },
    );
  }
  return eventOf(row);
}

/** Forgets idempotency keys older than the retention (35 days); answers how many. */
export async function pruneUsageIdempotencyKeys(db: Queryable, now: Date = new Date()): Promise<number> {
  const result = await db.query(`DELETE FROM usage_idempotency_keys WHERE created_at < $1`, [
    new Date(now.getTime() - usageIdempotencyRetentionMs),
  ]);
  return result.rowCount;
}

export interface MetricDay {
  day: Date;
  metric: string;
  events: number;
  sum: number;
  max: number;
  last: number;
  lastAt: Date;
}

/** Reported metrics of a team per UTC day in [from, to), by day then metric. */
export async function readMetricDays(
  db: Queryable,
  query: { teamId: string; from: Date; to: Date },
): Promise<MetricDay[]> {
  const result = await db.query<{
    period_start: Date;
    metric: string;
    events: string;
    quantity_sum: string;
    quantity_max: string;
    last_quantity: string;
    last_at: Date;
  }>(
    `SELECT period_start, metric, events, quantity_sum, quantity_max, last_quantity, last_at FROM usage_metric_day
     WHERE team_id = $1 AND period_start >= $2 AND period_start < $3 ORDER BY period_start, metric`,
    [query.teamId, new Date(periodStart(query.from.getTime(), 'day')), query.to],
  );
  return result.rows.map((row) => ({
    day: row.period_start,
    metric: row.metric,
    events: Number(row.events),
    sum: Number(row.quantity_sum),
    max: Number(row.quantity_max),
    last: Number(row.last_quantity),
    lastAt: row.last_at,
  }));
}
