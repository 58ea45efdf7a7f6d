import type { Queryable } from '../storage/database.js';
import { billingPeriod } from './billing-period.js';
import { loadTeamPolicy } from './team-policy.js';

/** Where a team stands against its plan's call quota in the current billing period. */
export interface QuotaStatus {
  plan: string;
  /** Calls included per period; null: the plan has no quota. */
  limit: number | null;
  /** Calls served in the period so far, overage included, as the rollups hold them. */
  usedInPeriod: number;
  /** limit - used, never below 0; null without a quota. */
  remaining: number | null;
  /** Calls served beyond the quota in the period (billed as overage). */
  overageCalls: number;
  overageAllowed: boolean;
  periodStart: Date;
  /** Exclusive. */
  periodEnd: Date;
}

const dayMs = 86_400_000;
const minuteMs = 60_000;

/**
 * The team's quota in the billing period holding `now`, from the usage rollups: whole UTC days from
 * `usage_day`, the partial days at either end from `usage_minute`. The minute holding the period's
 * start counts toward the period (rollups have no finer grain). The rollups trail the gateway by
 * the flush interval (at most about 10 seconds), so `usedInPeriod` can lag the gateway's own count.
 * Unknown team: undefined.
 */
export async function loadQuotaStatus(
  db: Queryable,
  teamId: string,
  now: Date = new Date(),
): Promise<QuotaStatus | undefined> {
  const policy = await loadTeamPolicy(db, teamId);
  if (!policy) return undefined;
  const period = billingPeriod(policy.billingAnchor, now);
  const start = period.start.getTime();
  const end = period.end.getTime();
  const firstWholeDay = Math.ceil(start / dayMs) * dayMs;
  const lastWholeDayEnd = Math.floor(end / dayMs) * dayMs;
  const minuteFrom = Math.floor(start / minuteMs) * minuteMs;
  // Billing periods are calendar months, so there is always at least one whole day in between.
  const result = await db.query<{ calls: string | null; overage: string | null }>(
    `SELECT sum(calls)::text AS calls, sum(overage_calls)::text AS overage FROM (
       SELECT calls, overage_calls FROM usage_day
         WHERE team_id = $1 AND period_start >= $2 AND period_start < $3
       UNION ALL
       SELECT calls, overage_calls FROM usage_minute
         WHERE team_id = $1 AND ((period_start >= $4 AND period_start < $2) OR (period_start >= $3 AND period_start < $5))
     ) AS counted`,
    [teamId, new Date(firstWholeDay), new Date(lastWholeDayEnd), new Date(minuteFrom), new Date(end)],
  );
  const row = result.rows[0];
  const used = Number(row?.calls ?? 0);
  const limit = policy.monthlyCallQuota;
  return {
    plan: policy.planSlug,
    limit,
    usedInPeriod: used,
    remaining: limit === null ? null : Math.max(0, limit - used),
    overageCalls: Number(row?.overage ?? 0),
    overageAllowed: policy.overageAllowed,
    periodStart: period.start,
    periodEnd: period.end,
  };
}
