import type { Queryable } from '../storage/database.js';
import { entitlementsHeaderValue } from './entitlement-header.js';
import type { PlanEntitlements } from './plan-schemas.js';

/**
 * What the gateway enforces for one team: its plan's limits, billing anchor and payment state; and
 * what it passes on: the plan's slug and entitlements (docs/plans.md#entitlements).
 */
export interface TeamPolicy {
  teamId: string;
  /** `none` when the team has no subscription and there is no default plan. */
  planSlug: string;
  /**
   * The feature flags of the team's plan version, keys sorted; `{}` without a plan. Frozen: every
   * call of the team shares it (plugins see it as `PluginRequest.entitlements`).
   */
  entitlements: Readonly<PlanEntitlements>;
  /**
   * `entitlements` as the `Tollgate-Entitlements` header value sent upstream (entitlement-header.ts),
   * computed once per load so a call only sets it.
   */
  entitlementsHeader: string;
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
  entitlements: Record<string, unknown> | null;
}

/**
 * The policy of a team: the plan of its live subscription, else the default plan, else (no default
 * plan at all) no limits. Unknown team: undefined.
 */
export async function loadTeamPolicy(db: Queryable, teamId: string): Promise<TeamPolicy | undefined> {
  const result = await db.query<PolicyRow>(
    `SELECT t.id AS team_id, p.slug, p.rate_limit_per_second, p.rate_limit_per_minute, p.rate_limit_per_hour,
            p.rate_limit_per_day, p.monthly_call_quota::text AS monthly_call_quota, p.overage_allowed, p.entitlements,
            t.billing_anchor_at, t.payment_required
     FROM teams t
     LEFT JOIN subscriptions s ON s.team_id = t.id AND s.status <> 'canceled'
     LEFT JOIN plans p ON p.id = coalesce(s.plan_id, (SELECT id FROM plans WHERE is_default))
     WHERE t.id = $1`,
    [teamId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  const entitlements = planEntitlements(row.entitlements);
  return {
    teamId: row.team_id,
    planSlug: row.slug ?? 'none',
    entitlements,
    entitlementsHeader: entitlementsHeaderValue(entitlements),
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

/** The plan's flags, keys sorted, frozen; anything but true/false, a number or a string is left out. */
function planEntitlements(stored: Record<string, unknown> | null): Readonly<PlanEntitlements> {
  const entitlements: PlanEntitlements = {};
  if (stored) {
    for (const name of Object.keys(stored).sort()) {
      const value = stored[name];
      if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') {
        entitlements[name] = value;
      }
    }
  }
  return Object.freeze(entitlements);
}
