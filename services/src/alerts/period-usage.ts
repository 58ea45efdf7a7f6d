import type { Queryable } from '../storage/database.js';
import { readMetricDays } from '../usage/usage-reports.js';
import { readUsage } from '../usage/usage-rollups.js';

const dayMs = 86_400_000;

/**
 * Units a team used per metric in a billing period, from the rollups (the same cut as
 * plans/quota-status.ts: whole UTC days from the day rollup, the partial days at either end by the
 * minute, the minute holding the period's start counted in):
 *
 * - `calls`: calls served, overage included;
 * - `bandwidth`: request plus response bytes;
 * - `storage`: the highest `storage_bytes` reading reported in the period (a level, not a count);
 * - any other metric: the sum of the quantities reported through POST /v1/usage, by UTC day (a
 *   reported metric has no finer grain, so the day holding the period's start counts in).
 */
export async function loadPeriodUsage(
  db: Queryable,
  input: { teamId: string; period: { start: Date; end: Date }; metrics: readonly string[] },
): Promise<Map<string, bigint>> {
  const used = new Map<string, bigint>();
  const wanted = new Set(input.metrics);
  const start = input.period.start.getTime();
  const end = input.period.end.getTime();
  if (wanted.has('calls') || wanted.has('bandwidth')) {
    const firstWholeDay = Math.ceil(start / dayMs) * dayMs;
    const lastWholeDayEnd = Math.floor(end / dayMs) * dayMs;
    const slices = [
      { from: start, to: firstWholeDay, groupBy: 'minute' as const },
      { from: firstWholeDay, to: lastWholeDayEnd, groupBy: 'day' as const },
      { from: lastWholeDayEnd, to: end, groupBy: 'minute' as const },
    ];
    let calls = 0n;
    let bytes = 0n;
    for (const slice of slices) {
      if (slice.to <= slice.from) continue;
      const { totals } = await readUsage(db, {
        teamId: input.teamId,
        from: new Date(slice.from),
        to: new Date(slice.to),
        groupBy: slice.groupBy,
      });
      calls += BigInt(totals.calls);
      bytes += BigInt(totals.requestBytes) + BigInt(totals.responseBytes);
    }
    used.set('calls', calls);
    used.set('bandwidth', bytes);
  }
  const reported = [...wanted].filter((metric) => metric !== 'calls' && metric !== 'bandwidth');
  if (reported.length > 0) {
    const days = await readMetricDays(db, { teamId: input.teamId, from: input.period.start, to: input.period.end });
    for (const metric of reported) {
      const source = metric === 'storage' ? 'storage_bytes' : metric;
      const rows = days.filter((day) => day.metric === source);
      used.set(
        metric,
        metric === 'storage'
          ? rows.reduce((peak, day) => (BigInt(day.max) > peak ? BigInt(day.max) : peak), 0n)
          : rows.reduce((sum, day) => sum + BigInt(day.sum), 0n),
      );
    }
  }
  return used;
}
