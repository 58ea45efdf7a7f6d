import { formatMoney } from '../billing/money.js';
import { rateLine } from '../billing/pricing.js';
import type { Currency } from '../billing/pricing-schema.js';
import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import type { Mailer } from '../mail/mailer.js';
import { billingPeriod } from '../plans/billing-period.js';
import { loadTeamPlanTerms, type TeamPlanTerms } from '../plans/team-plan.js';
import type { Database, Queryable } from '../storage/database.js';
import { findTeam, listMembers } from '../teams/teams.js';
import { enqueueTeamEvent, type WebhookEventType } from '../webhooks/webhook-events.js';
import {
  type AlertThreshold,
  alertCurrency,
  describeThreshold,
  listAlertThresholds,
  majorAmount,
  teamsWithAlerts,
} from './alert-thresholds.js';
import { loadPeriodUsage } from './period-usage.js';

/** One threshold that fired: recorded once for its team and billing period. */
export interface AlertFiring {
  id: string;
  teamId: string;
  threshold: AlertThreshold;
  periodStart: Date;
  periodEnd: Date;
  /** quota: units used and included when it fired. */
  used: bigint | null;
  included: bigint | null;
  /** spend: overage charges so far when it fired, minor units in the threshold's currency. */
  spendMinor: bigint | null;
  eventTypes: WebhookEventType[];
  emailsSent: number;
  emailError: string | null;
  firedAt: Date;
}

export interface EvaluateAlertsOptions {
  database: Database;
  mailer: Mailer;
  logger?: Logger | undefined;
  /** The clock; the billing period is the one holding it. */
  now?: Date;
}

/**
 * Overage charges of the period so far, in `currency`: each metric the plan prices in that currency,
 * rated with `rateLine` (the invoice's rule, rounded once per metric) on what was used beyond what the
 * plan includes. The base fee is not in it.
 */
export function overageSpend(terms: TeamPlanTerms, used: ReadonlyMap<string, bigint>, currency: Currency): bigint {
  let total = 0n;
  for (const [metric, prices] of Object.entries(terms.overage)) {
    const price = prices[currency];
    if (!price) continue;
    const included = terms.included[metric];
    total += rateLine({
      price,
      used: used.get(metric) ?? 0n,
      included: included === undefined || included === null ? null : BigInt(included),
      currency,
    }).amountMinor;
  }
  return total;
}

interface Crossing {
  threshold: AlertThreshold;
  used: bigint | null;
  included: bigint | null;
  spendMinor: bigint | null;
  eventTypes: WebhookEventType[];
}

/** The thresholds the team's usage has reached in the period holding `now`. */
async function crossings(
  db: Queryable,
  thresholds: AlertThreshold[],
  terms: TeamPlanTerms,
  period: { start: Date; end: Date },
  implicit: ReadonlySet<AlertThreshold>,
): Promise<Crossing[]> {
  const currency = alertCurrency(terms);
  const hasSpend = thresholds.some((threshold) => threshold.kind === 'spend' && threshold.currency === currency);
  const metrics = new Set<string>();
  for (const threshold of thresholds) if (threshold.kind === 'quota') metrics.add(threshold.metric);
  if (hasSpend) for (const metric of Object.keys(terms.overage)) metrics.add(metric);
  const used = await loadPeriodUsage(db, { teamId: terms.teamId, period, metrics: [...metrics] });
  const spend = hasSpend ? overageSpend(terms, used, currency) : 0n;
  const reached: Crossing[] = [];
  for (const threshold of thresholds) {
    if (threshold.kind === 'quota') {
      const included = terms.included[threshold.metric];
      // The plan changed since the threshold was set and has no quota for the metric any more.
      if (included === undefined || included === null || included <= 0) continue;
      const units = used.get(threshold.metric) ?? 0n;
      if (units * 100n < BigInt(threshold.percent) * BigInt(included)) continue;
      const eventTypes: WebhookEventType[] = implicit.has(threshold)
        ? ['quota.exhausted']
        : ['quota.threshold_reached'];
      if (!implicit.has(threshold) && threshold.percent === 100 && !terms.overageAllowed) {
        eventTypes.push('quota.exhausted');
      }
      reached.push({ threshold, used: units, included: BigInt(included), spendMinor: null, eventTypes });
    } else if (threshold.currency === currency && spend >= threshold.amountMinor) {
      reached.push({
        threshold,
        used: null,
        included: null,
        spendMinor: spend,
        eventTypes: ['quota.threshold_reached'],
      });
    }
  }
  return reached;
}

function eventData(crossing: Crossing, terms: TeamPlanTerms, period: { start: Date; end: Date }) {
  const { threshold } = crossing;
  return {
    alert:
      threshold.kind === 'quota'
        ? { key: threshold.key, kind: 'quota', metric: threshold.metric, percent: threshold.percent }
        : {
            key: threshold.key,
            kind: 'spend',
            amount: majorAmount(threshold.amountMinor, threshold.currency),
            amount_minor: Number(threshold.amountMinor),
            currency: threshold.currency,
          },
    plan: terms.planSlug,
    period_start: period.start.toISOString(),
    period_end: period.end.toISOString(),
    ...(threshold.kind === 'quota'
      ? { metric: threshold.metric, used: Number(crossing.used), included: Number(crossing.included) }
      : { spend_minor: Number(crossing.spendMinor), currency: threshold.currency }),
  };
}

/** Records the firing and its webhook events in one transaction; undefined when it had already fired. */
async function recordFiring(
  database: Database,
  terms: TeamPlanTerms,
  period: { start: Date; end: Date },
  crossing: Crossing,
  now: Date,
): Promise<string | undefined> {
  const { threshold } = crossing;
  return database.transaction(async (tx) => {
    // The UNIQUE (team, threshold, period start) key: a concurrent evaluation waits here for this one
    // to commit, then finds the row and fires nothing.
    const inserted = await tx.query<{ id: string }>(
      `INSERT INTO usage_alert_firings (team_id, threshold_key, period_start, period_end, kind, metric, percent,
         amount_minor, currency, used, included, spend_minor, event_types, fired_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
       ON CONFLICT (team_id, threshold_key, period_start) DO NOTHING RETURNING id`,
      [
        terms.teamId,
        threshold.key,
        period.start,
        period.end,
        threshold.kind,
        threshold.kind === 'quota' ? threshold.metric : null,
        threshold.kind === 'quota' ? threshold.percent : null,
        threshold.kind === 'spend' ? threshold.amountMinor.toString() : null,
        threshold.kind === 'spend' ? threshold.currency : null,
        crossing.used?.toString() ?? null,
        crossing.included?.toString() ?? null,
        crossing.spendMinor?.toString() ?? null,
        crossing.eventTypes,
        now,
      ],
    );
    const id = inserted.rows[0]?.id;
    if (id === undefined) return undefined;
    const data = eventData(crossing, terms, period);
    for (const type of crossing.eventTypes) await enqueueTeamEvent(tx, { teamId: terms.teamId, type, data });
    return id;
  });
}

function alertMail(teamName: string, crossing: Crossing, period: { start: Date; end: Date }) {
  const { threshold } = crossing;
  const day = (date: Date) => date.toISOString().slice(0, 10);
  const subject =
    threshold.kind === 'quota'
      ? `${teamName} reached ${threshold.percent}% of its ${threshold.metric} quota`
      : `${teamName}'s overage charges reached ${formatMoney(threshold.amountMinor, threshold.currency)}`;
  const detail =
    threshold.kind === 'quota'
      ? `Used so far: ${crossing.used} of ${crossing.included} ${threshold.metric} included in the plan.`
      : `Overage charges so far: ${formatMoney(crossing.spendMinor ?? 0n, threshold.currency)} (the base fee is not included).`;
  const text = [
    `Your team ${teamName} reached its usage alert "${describeThreshold(threshold)}" in the billing period from ${day(period.start)} to ${day(period.end)} (UTC).`,
    '',
    detail,
    '',
    'This alert fires once per billing period. See every alert that fired with `tollgate alerts history`,',
    'and change the thresholds with `tollgate alerts set`.',
  ].join('\n');
  return { subject, text };
}

/** Emails the team's owner and admins; the firing is already committed, so this is at most once. */
async function emailFiring(
  options: EvaluateAlertsOptions,
  firingId: string,
  teamId: string,
  crossing: Crossing,
  period: { start: Date; end: Date },
): Promise<void> {
  const team = await findTeam(options.database, teamId);
  if (!team) return;
  const recipients = (await listMembers(options.database, teamId)).filter(
    (member) => member.role === 'admin' || member.userId === team.ownerUserId,
  );
  const message = alertMail(team.name, crossing, period);
  let sent = 0;
  let lastError: string | null = null;
  for (const recipient of recipients) {
    try {
      await options.mailer.send({
        to: recipient.email,
        ...message,
        headers: { 'Auto-Submitted': 'auto-generated', 'X-Tollgate-Purpose': 'usage-alert' },
      });
      sent += 1;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      options.logger?.warn({ err: error, teamId, firingId }, 'could not email a usage alert');
    }
  }
  await options.database.query('UPDATE usage_alert_firings SET emails_sent = $2, email_error = $3 WHERE id = $1', [
    firingId,
    sent,
    lastError,
  ]);
}

/**
 * Fires the team's thresholds its usage has reached in the current billing period and that have not
 * fired in it yet: each records a firing (once, whatever runs at once), enqueues its webhook events
 * in the same transaction, then emails the team's owner and admins. Answers the new firings' ids.
 */
export async function evaluateTeamAlerts(options: EvaluateAlertsOptions & { teamId: string }): Promise<string[]> {
  const { database, teamId } = options;
  const now = options.now ?? new Date();
  const thresholds = await listAlertThresholds(database, teamId);
  const listening = (await teamsListeningForExhaustion(database, teamId)).size > 0;
  if (thresholds.length === 0 && !listening) return [];
  const terms = await loadTeamPlanTerms(database, teamId);
  if (!terms) return [];
  // A team whose webhook endpoint subscribes to quota.exhausted hears of every capped quota that ran
  // out, alert or not: an implicit 100% threshold per metric with a quota, webhook only, no email.
  const implicit = new Set<AlertThreshold>();
  if (listening && !terms.overageAllowed) {
    for (const [metric, included] of Object.entries(terms.included)) {
      if (included === null || included <= 0) continue;
      if (thresholds.some((t) => t.kind === 'quota' && t.metric === metric && t.percent === 100)) continue;
      const threshold: AlertThreshold = { key: exhaustedKey(metric), kind: 'quota', metric, percent: 100 };
      implicit.add(threshold);
      thresholds.push(threshold);
    }
  }
  if (thresholds.length === 0) return [];
  const period = billingPeriod(terms.billingAnchor, now);
  const fired = await database.query<{ threshold_key: string }>(
    'SELECT threshold_key FROM usage_alert_firings WHERE team_id = $1 AND period_start = $2',
    [teamId, period.start],
  );
  const done = new Set(fired.rows.map((row) => row.threshold_key));
  const pending = thresholds.filter((threshold) => !done.has(threshold.key));
  if (pending.length === 0) return [];
  const ids: string[] = [];
  for (const crossing of await crossings(database, pending, terms, period, implicit)) {
    const id = await recordFiring(database, terms, period, crossing, now);
    if (id === undefined) continue;
    ids.push(id);
    if (!implicit.has(crossing.threshold)) await emailFiring(options, id, teamId, crossing, period);
  }
  return ids;
}

/** The key of the implicit threshold behind quota.exhausted for a team without a 100% alert. */
export const exhaustedKey = (metric: string) => `exhausted:${metric}`;

/** Teams (all, or just `teamId`) with an enabled webhook endpoint subscribed to quota.exhausted. */
async function teamsListeningForExhaustion(db: Queryable, teamId?: string): Promise<Set<string>> {
  const result = await db.query<{ team_id: string }>(
    `SELECT DISTINCT team_id FROM webhook_endpoints
     WHERE enabled AND 'quota.exhausted' = ANY (event_types) AND ($1::uuid IS NULL OR team_id = $1)`,
    [teamId ?? null],
  );
  return new Set(result.rows.map((row) => row.team_id));
}

/**
 * Evaluates every team with thresholds or listening for quota.exhausted; one team's failure is
 * logged and does not stop the others.
 */
export async function evaluateAllAlerts(options: EvaluateAlertsOptions): Promise<number> {
  let fired = 0;
  const teams = new Set([
    ...(await teamsWithAlerts(options.database)),
    ...(await teamsListeningForExhaustion(options.database)),
  ]);
  for (const teamId of teams) {
    try {
      fired += (await evaluateTeamAlerts({ ...options, teamId })).length;
    } catch (error) {
      options.logger?.error({ err: error, teamId }, 'could not evaluate usage alerts');
    }
  }
  return fired;
}

/**
 * The worker job: every minute, every team with thresholds. Alerts therefore trail usage by up to a
 * minute plus the usage flush (about 10 seconds from the gateway to the rollups).
 */
export function usageAlertJob(options: {
  database: Database;
  mailer: Mailer;
  logger: Logger;
  /** The clock; `new Date()` by default. */
  now?: () => Date;
}): Job {
  return {
    name: 'usage-alerts',
    intervalMs: 60_000,
    async run() {
      const fired = await evaluateAllAlerts({
        database: options.database,
        mailer: options.mailer,
        logger: options.logger,
        now: options.now?.() ?? new Date(),
      });
      if (fired > 0) options.logger.info({ fired }, 'usage alerts fired');
    },
  };
}

interface FiringRow {
  id: string;
  team_id: string;
  threshold_key: string;
  period_start: Date;
  period_end: Date;
  kind: 'quota' | 'spend';
  metric: string | null;
  percent: number | null;
  amount_minor: string | null;
  currency: string | null;
  used: string | null;
  included: string | null;
  spend_minor: string | null;
  event_types: string[];
  emails_sent: number;
  email_error: string | null;
  fired_at: Date;
}

const bigOrNull = (value: string | null) => (value === null ? null : BigInt(value));

/** The team's firings, newest first (at most `limit`, 100 by default). */
export async function listAlertFirings(
  db: Queryable,
  input: { teamId: string; limit?: number },
): Promise<AlertFiring[]> {
  const result = await db.query<FiringRow>(
    `SELECT id, team_id, threshold_key, period_start, period_end, kind, metric, percent, amount_minor::text,
            currency, used::text, included::text, spend_minor::text, event_types, emails_sent, email_error, fired_at
     FROM usage_alert_firings WHERE team_id = $1 ORDER BY fired_at DESC, threshold_key LIMIT $2`,
    [input.teamId, input.limit ?? 100],
  );
  return result.rows.map((row) => ({
    id: row.id,
    teamId: row.team_id,
    threshold:
      row.kind === 'quota'
        ? { key: row.threshold_key, kind: 'quota', metric: row.metric as string, percent: row.percent as number }
        : {
            key: row.threshold_key,
            kind: 'spend',
            amountMinor: BigInt(row.amount_minor as string),
            currency: (row.currency as string).trim() as Currency,
          },
    periodStart: row.period_start,
    periodEnd: row.period_end,
    used: bigOrNull(row.used),
    included: bigOrNull(row.included),
    spendMinor: bigOrNull(row.spend_minor),
    eventTypes: row.event_types as WebhookEventType[],
    emailsSent: row.emails_sent,
    emailError: row.email_error,
    firedAt: row.fired_at,
  }));
}
