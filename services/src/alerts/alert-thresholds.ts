import { formatMoney, fromMinorUnits, minorUnitsOf, parseAmount } from '../billing/money.js';
import type { Currency } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { loadTeamPlanTerms, type TeamPlanTerms } from '../plans/team-plan.js';
import type { Queryable } from '../storage/database.js';
import { metricPattern } from '../usage/usage-reports.js';

/**
 * A team's usage alert thresholds (docs/alerts.md). A quota threshold is a whole percentage of what
 * the team's plan includes of one metric; a spend threshold is an amount of overage charges in the
 * team's currency. Each fires at most once per billing period (alert-evaluation.ts).
 */
export type AlertThreshold =
  | { key: string; kind: 'quota'; metric: string; percent: number }
  | { key: string; kind: 'spend'; amountMinor: bigint; currency: Currency };

export interface AlertThresholdsInput {
  quota: readonly { metric: string; percent: number }[];
  /** Amounts as people write them, in the team's currency: "50", "12.50". */
  spend: readonly { amount: string }[];
}

/** At most this many thresholds per team. */
export const maxThresholds = 20;

/**
 * The currency spend thresholds are in: the team's (fixed at its first subscription), else USD for
 * a team that never subscribed.
 */
export function alertCurrency(terms: Pick<TeamPlanTerms, 'currency'>): Currency {
  return terms.currency ?? 'USD';
}

export const quotaKey = (metric: string, percent: number) => `quota:${metric}:${percent}`;
export const spendKey = (amountMinor: bigint, currency: Currency) => `spend:${currency}:${amountMinor}`;

function invalid(path: string, message: string, hint?: string): TollgateError {
  return new TollgateError('validation_failed', `${path}: ${message}`, {
    ...(hint ? { hint } : {}),
    details: { issues: [{ path, message }] },
  });
}

/** Checks the input against the team's plan and answers the thresholds it names, without duplicates. */
export function checkThresholds(input: AlertThresholdsInput, terms: TeamPlanTerms): AlertThreshold[] {
  const thresholds = new Map<string, AlertThreshold>();
  for (const [index, { metric, percent }] of input.quota.entries()) {
    const path = `quota.${index}`;
    if (!Number.isInteger(percent) || percent < 1 || percent > 100) {
      throw invalid(`${path}.percent`, 'a whole percentage from 1 to 100');
    }
    if (typeof metric !== 'string' || !metricPattern.test(metric)) {
      throw invalid(`${path}.metric`, 'a metric name such as calls, bandwidth or storage');
    }
    const included = terms.included[metric];
    if (included === undefined || included === null || included === 0) {
      const quotas = Object.entries(terms.included)
        .filter(([, units]) => typeof units === 'number' && units > 0)
        .map(([name]) => name)
        .sort();
      throw invalid(
        `${path}.metric`,
        included === 0
          ? `plan ${terms.planSlug} includes no ${metric} (0 units), so a percentage of it means nothing`
          : `plan ${terms.planSlug} has no quota for ${metric}`,
        quotas.length > 0
          ? `metrics with a quota on this plan: ${quotas.join(', ')}; for charges, set a spend threshold`
          : 'this plan has no quota; set a spend threshold instead',
      );
    }
    const key = quotaKey(metric, percent);
    thresholds.set(key, { key, kind: 'quota', metric, percent });
  }
  const currency = alertCurrency(terms);
  for (const [index, { amount }] of input.spend.entries()) {
    let amountMinor: bigint;
    try {
      amountMinor = parseAmount(amount, currency);
    } catch (error) {
      if (error instanceof TollgateError) {
        throw invalid(`spend.${index}.amount`, error.message.replace(/^amount: /, ''), error.hint);
      }
      throw error;
    }
    if (amountMinor <= 0n) throw invalid(`spend.${index}.amount`, 'must be more than 0');
    const key = spendKey(amountMinor, currency);
    thresholds.set(key, { key, kind: 'spend', amountMinor, currency });
  }
  if (thresholds.size > maxThresholds) {
    throw invalid('quota', `at most ${maxThresholds} thresholds per team`);
  }
  return [...thresholds.values()];
}

interface ThresholdRow {
  threshold_key: string;
  kind: 'quota' | 'spend';
  metric: string | null;
  percent: number | null;
  amount_minor: string | null;
  currency: string | null;
}

const thresholdOf = (row: ThresholdRow): AlertThreshold =>
  row.kind === 'quota'
    ? { key: row.threshold_key, kind: 'quota', metric: row.metric as string, percent: row.percent as number }
    : {
        key: row.threshold_key,
        kind: 'spend',
        amountMinor: BigInt(row.amount_minor as string),
        currency: (row.currency as string).trim() as Currency,
      };

/** Quota thresholds by metric then percentage, then spend thresholds by amount. */
function sortThresholds(thresholds: AlertThreshold[]): AlertThreshold[] {
  return thresholds.sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === 'quota' ? -1 : 1;
    if (a.kind === 'quota' && b.kind === 'quota') return a.metric.localeCompare(b.metric) || a.percent - b.percent;
    if (a.kind === 'spend' && b.kind === 'spend') return a.amountMinor < b.amountMinor ? -1 : 1;
    return 0;
  });
}

export async function listAlertThresholds(db: Queryable, teamId: string): Promise<AlertThreshold[]> {
  const result = await db.query<ThresholdRow>(
    `SELECT threshold_key, kind, metric, percent, amount_minor::text, currency
     FROM usage_alert_thresholds WHERE team_id = $1`,
    [teamId],
  );
  return sortThresholds(result.rows.map(thresholdOf));
}

/**
 * Replaces the team's thresholds with the ones given (none: clears them). Checked against the team's
 * current plan first; refused input throws before anything is written. Run it in a transaction.
 * A threshold kept across a replacement keeps its firings: it does not fire again this period.
 */
export async function setAlertThresholds(
  tx: Queryable,
  input: AlertThresholdsInput & { teamId: string; userId: string },
): Promise<AlertThreshold[]> {
  const terms = await loadTeamPlanTerms(tx, input.teamId);
  if (!terms) throw new TollgateError('not_found', 'no such team');
  const thresholds = checkThresholds(input, terms);
  await tx.query('DELETE FROM usage_alert_thresholds WHERE team_id = $1', [input.teamId]);
  for (const threshold of thresholds) {
    await tx.query(
      `INSERT INTO usage_alert_thresholds (team_id, threshold_key, kind, metric, percent, amount_minor, currency, created_by_user_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      threshold.kind === 'quota'
        ? [input.teamId, threshold.key, 'quota', threshold.metric, threshold.percent, null, null, input.userId]
        : [
            input.teamId,
            threshold.key,
            'spend',
            null,
            null,
            threshold.amountMinor.toString(),
            threshold.currency,
            input.userId,
          ],
    );
  }
  return sortThresholds(thresholds);
}

/** Removes every threshold of the team; answers how many there were. Firing history stays. */
export async function clearAlertThresholds(tx: Queryable, teamId: string): Promise<number> {
  const result = await tx.query('DELETE FROM usage_alert_thresholds WHERE team_id = $1', [teamId]);
  return result.rowCount;
}

/** Teams with at least one threshold: the ones the alert job evaluates. */
export async function teamsWithAlerts(db: Queryable): Promise<string[]> {
  const result = await db.query<{ team_id: string }>(
    'SELECT DISTINCT team_id FROM usage_alert_thresholds ORDER BY team_id',
  );
  return result.rows.map((row) => row.team_id);
}

/** "80% of calls", "$50.00 of overage". */
export function describeThreshold(threshold: AlertThreshold): string {
  return threshold.kind === 'quota'
    ? `${threshold.percent}% of ${threshold.metric}`
    : `${formatMoney(threshold.amountMinor, threshold.currency)} of overage`;
}

/** Minor units as a plain decimal in major units: 5000n USD is "50.00". */
export function majorAmount(minor: bigint, currency: Currency): string {
  return fromMinorUnits(minor, currency).toFixed(minorUnitsOf(currency));
}
