import type { Queryable } from '../storage/database.js';
import { addCounts, emptyCounts, type UsageCell, type UsageCounts } from './usage-counter-store.js';

export const rollupPeriods = ['minute', 'hour', 'day'] as const;
export type RollupPeriod = (typeof rollupPeriods)[number];

const tables: Record<RollupPeriod, string> = { minute: 'usage_minute', hour: 'usage_hour', day: 'usage_day' };
const periodMs: Record<RollupPeriod, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Start of the UTC minute, hour or day holding `ms`. */
export function periodStart(ms: number, period: RollupPeriod): number {
  return ms - (((ms % periodMs[period]) + periodMs[period]) % periodMs[period]);
}

const columns = [
  ['calls', 'calls'],
  ['requestBytes', 'request_bytes'],
  ['responseBytes', 'response_bytes'],
  ['latencyUsSum', 'latency_us_sum'],
  ['latencyUsMax', 'latency_us_max'],
  ['status2xx', 'status_2xx'],
  ['status3xx', 'status_3xx'],
  ['status4xx', 'status_4xx'],
  ['status5xx', 'status_5xx'],
  ['overageCalls', 'overage_calls'],
] as const satisfies readonly (readonly [keyof UsageCounts, string])[];

const columnList = columns.map(([, column]) => column).join(', ');
const recordType = columns.map(([, column]) => `${column} bigint`).join(', ');
const upsertSet = columns
  .map(([name, column]) =>
    name === 'latencyUsMax'
      ? `${column} = GREATEST(u.${column}, excluded.${column})`
      : `${column} = u.${column} + excluded.${column}`,
  )
  .join(', ');

function upsertSql(table: string): string {
  // One statement per table whatever the batch size: the rows travel as one JSON document, which both
  // node-postgres and PGlite pass the same way.
  return `INSERT INTO ${table} AS u (period_start, team_id, api_id, key_id, ${columnList})
    SELECT to_timestamp(r.period_ms / 1000.0), r.team_id, r.api_id, r.key_id, ${columnList}
    FROM jsonb_to_recordset($1::jsonb) AS r(period_ms bigint, team_id text, api_id text, key_id text, ${recordType})
    ON CONFLICT (team_id, period_start, api_id, key_id) DO UPDATE SET ${upsertSet}`;
}

/**
 * Adds the cells to the minute, hour and day rollups (upsert-add; maxima keep the larger). Run it in
 * the transaction that records the batch as written. Rows go in key order, so two flushers writing
 * at once lock rows in the same order.
 */
export async function addToRollups(tx: Queryable, cells: readonly UsageCell[]): Promise<void> {
  if (cells.length === 0) return;
  for (const period of rollupPeriods) {
    const rows = new Map<
      string,
      { period_ms: number; team_id: string; api_id: string; key_id: string; counts: UsageCounts }
    >();
    for (const cell of cells) {
      const start = periodStart(cell.minute, period);
      const id = JSON.stringify([cell.teamId, start, cell.apiId, cell.keyId]);
      let row = rows.get(id);
      if (!row) {
        row = { period_ms: start, team_id: cell.teamId, api_id: cell.apiId, key_id: cell.keyId, counts: emptyCounts() };
        rows.set(id, row);
      }
      addCounts(row.counts, cell.counts);
    }
    const ordered = [...rows.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, row]) => {
        const flat: Record<string, string | number> = {
          period_ms: row.period_ms,
          team_id: row.team_id,
          api_id: row.api_id,
          key_id: row.key_id,
        };
        for (const [name, column] of columns) flat[column] = row.counts[name];
        return flat;
      });
    await tx.query(upsertSql(tables[period]), [JSON.stringify(ordered)]);
  }
}

export interface UsageQuery {
  teamId: string;
  /** Inclusive, aligned down to the period. */
  from: Date;
  /** Exclusive. */
  to: Date;
  groupBy: 'minute' | 'hour' | 'day';
  apiId?: string | undefined;
  keyId?: string | undefined;
}

export interface UsagePeriod {
  start: Date;
  counts: UsageCounts;
}

/** The team's counted calls per period (only periods with calls), oldest first, and their totals. */
export async function readUsage(
  db: Queryable,
  query: UsageQuery,
): Promise<{ periods: UsagePeriod[]; totals: UsageCounts }> {
  const sums = columns
    .map(([name, column]) => `${name === 'latencyUsMax' ? 'max' : 'sum'}(${column}) AS ${column}`)
    .join(', ');
  const params: unknown[] = [query.teamId, new Date(periodStart(query.from.getTime(), query.groupBy)), query.to];
  let filter = '';
  if (query.apiId !== undefined) {
    params.push(query.apiId);
    filter += ` AND api_id = $${params.length}`;
  }
  if (query.keyId !== undefined) {
    params.push(query.keyId);
    filter += ` AND key_id = $${params.length}`;
  }
  const result = await db.query<Record<string, string | Date>>(
    `SELECT period_start, ${sums} FROM ${tables[query.groupBy]}
     WHERE team_id = $1 AND period_start >= $2 AND period_start < $3${filter}
     GROUP BY period_start ORDER BY period_start`,
    params,
  );
  const totals = emptyCounts();
  const periods = result.rows.map((row) => {
    const counts = emptyCounts();
    for (const [name, column] of columns) counts[name] = Number(row[column] ?? 0);
    addCounts(totals, counts);
    return { start: row.period_start as Date, counts };
  });
  return { periods, totals };
}
