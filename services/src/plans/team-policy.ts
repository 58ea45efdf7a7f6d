import type { Queryable } from '../storage/database.js';

/** What the gateway enforces for one team: its plan's limits, billing anchor and payment state. */
export interface TeamPolicy {
  teamId: string;
  planSlug: string;
  /** Per-team windows; null: no limit for that window. */
  limits: { second: number | null; minute: number | null; hour: number | null; day: number | null };
  /** Calls included per billing period; null: unlimited. */
  monthlyCallQuota: number | null;
  overageAllowed: boolean;
  billingAnchor: Date;
  /** The subscription is unpaid beyond its grace period: the gateway answers 402. */
  paymentRequired: boolean;
}

interface PolicyRow {
  team_id: string;
  slug: string | null;
  rate_limit_per_second: number | null;
  rate_limit_per_minute: number | null;
  rate_limit_per_hour: number | null;
  rate_limit_per_day: number | null;
  monthly_call_quota: string | null;
  overage_allowed: boolean | null;
  billing_anchor_at: Date;
  payment_required: boolean;
}

/**
 * The policy of a team: the plan of its live subscription, else the default plan, else (no default
 * plan at all) no limits. Unknown team: undefined.
 */
export async function loadTeamPolicy(db: Queryable, teamId: string): Promise<TeamPolicy | undefined> {
  const result = await db.query<PolicyRow>(
    `SELECT t.id AS team_id, p.slug, p.rate_limit_per_second, p.rate_limit_per_minute, p.rate_limit_per_hour,
            p.rate_limit_per_day, p.monthly_call_quota::text AS monthly_call_quota, p.overage_allowed,
            t.billing_anchor_at, t.payment_required
     FROM teams t
     LEFT JOIN subscriptions s ON s.team_id = t.id AND s.status <> 'canceled'
     LEFT JOIN plans p ON p.id = coalesce(s.plan_id, (SELECT id FROM plans WHERE is_default))
     WHERE t.id = $1`,
    [teamId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    teamId: row.team_id,
    planSlug: row.slug ?? 'none',
    limits: {
      second: row.rate_limit_per_second,
      minute: row.rate_limit_per_minute,
      hour: row.rate_limit_per_hour,
      day: row.rate_limit_per_day,
    },
    monthlyCallQuota: row.monthly_call_quota === null ? null : Number(row.monthly_call_quota),
    overageAllowed: row.overage_allowed ?? false,
    billingAnchor: row.billing_anchor_at,
    paymentRequired: row.payment_required,
  };
}
