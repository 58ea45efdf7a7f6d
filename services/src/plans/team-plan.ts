import type { Currency } from '../billing/pricing-schema.js';
import { currencySchema } from '../billing/pricing-schema.js';
import type { Queryable } from '../storage/database.js';
import type { PlanOverage } from './plan-schemas.js';

/** The terms of a team's plan that usage alerts rate against, read the way team-policy.ts picks the plan. */
export interface TeamPlanTerms {
  teamId: string;
  /** null when there is no plan at all (no subscription and no default plan). */
  planId: string | null;
  planSlug: string;
  /** metric -> units included per billing period; null: unlimited. `calls` is `monthly_call_quota`. */
  included: Record<string, number | null>;
  overageAllowed: boolean;
  overage: PlanOverage;
  /** The live subscription's currency; else the newest subscription's; null for a team never subscribed. */
  currency: Currency | null;
  billingAnchor: Date;
}

interface TermsRow {
  team_id: string;
  plan_id: string | null;
  slug: string | null;
  monthly_call_quota: string | null;
  included_quotas: Record<string, number | null> | null;
  overage_allowed: boolean | null;
  overage_prices: PlanOverage | null;
  currency: string | null;
  billing_anchor_at: Date;
}

/**
 * The plan of a team's live subscription, else the default plan (as team-policy.ts), with its quotas
 * and overage prices. Unknown team: undefined.
 */
export async function loadTeamPlanTerms(db: Queryable, teamId: string): Promise<TeamPlanTerms | undefined> {
  const result = await db.query<TermsRow>(
    `SELECT t.id AS team_id, p.id AS plan_id, p.slug, p.monthly_call_quota::text AS monthly_call_quota,
            p.included_quotas, p.overage_allowed, p.overage_prices, t.billing_anchor_at,
            coalesce(s.currency, (SELECT currency FROM subscriptions WHERE team_id = t.id ORDER BY created_at DESC LIMIT 1)) AS currency
     FROM teams t
     LEFT JOIN subscriptions s ON s.team_id = t.id AND s.status <> 'canceled'
     LEFT JOIN plans p ON p.id = coalesce(s.plan_id, (SELECT id FROM plans WHERE is_default))
     WHERE t.id = $1`,
    [teamId],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  const currency = currencySchema.safeParse(row.currency?.trim());
  return {
    teamId: row.team_id,
    planId: row.plan_id,
    planSlug: row.slug ?? 'none',
    included:
      row.plan_id === null
        ? {}
        : {
            ...(row.included_quotas ?? {}),
            calls: row.monthly_call_quota === null ? null : Number(row.monthly_call_quota),
          },
    overageAllowed: row.overage_allowed ?? false,
    overage: row.overage_prices ?? {},
    currency: currency.success ? currency.data : null,
    billingAnchor: row.billing_anchor_at,
  };
}
