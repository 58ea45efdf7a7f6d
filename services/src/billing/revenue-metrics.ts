import { Decimal } from 'decimal.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import type { Database, Queryable } from '../storage/database.js';
import { convertToBase, rateDecimals } from './exchange-rates.js';
import { MoneyDecimal, minorUnitsOf, roundMinorUnits, scaledDecimal } from './money.js';
import type { Currency } from './pricing-schema.js';

/**
 * Revenue metrics per day in the operator's base currency (docs/billing.md "Revenue metrics").
 * A day's figures come from the state of every live subscription at the end of that day, recorded
 * by the revenue-snapshot job (migration 0024 says why history is not rebuilt from the
 * subscriptions table); today's come from the live table. Amounts are exact until the one rounding
 * of each figure (half up, the money.ts rule).
 */

const dayMs = 86_400_000;
/** The longest range one request may ask for, in days. */
export const maxMetricsDays = 366;

type SnapshotStatus = 'trialing' | 'active' | 'past_due' | 'unpaid';

interface SnapshotRow {
  subscription_id: string;
  team_id: string;
  status: SnapshotStatus;
  currency: string;
  billing_interval: 'month' | 'year';
  amount_minor: string;
}

const liveSubscriptions = `SELECT id AS subscription_id, team_id, status, currency, billing_interval, amount_minor::text
  FROM subscriptions WHERE status <> 'canceled'`;

/** "2026-03-01" for the UTC day holding `at`. */
export function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

const startOfDay = (day: string) => new Date(`${day}T00:00:00.000Z`);
const nextDay = (day: string) => dayOf(new Date(startOfDay(day).getTime() + dayMs));
const previousDay = (day: string) => dayOf(new Date(startOfDay(day).getTime() - dayMs));

/**
 * Records the state of every live subscription for the day of `now` (replacing an earlier record of
 * that day, so the last run of a day is its end-of-day state). Idempotent.
 */
export async function recordRevenueSnapshot(
  database: Database,
  input: { now?: Date } = {},
): Promise<{ day: string; subscriptions: number }> {
  const now = input.now ?? new Date();
  const day = dayOf(now);
  return database.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO revenue_snapshot_days (day, taken_at) VALUES ($1, $2)
       ON CONFLICT (day) DO UPDATE SET taken_at = excluded.taken_at`,
      [day, now],
    );
    await tx.query('DELETE FROM subscription_daily_snapshots WHERE day = $1', [day]);
    const inserted = await tx.query(
      `INSERT INTO subscription_daily_snapshots (day, subscription_id, team_id, status, currency, billing_interval, amount_minor)
       SELECT $1, id, team_id, status, currency, billing_interval, amount_minor FROM subscriptions WHERE status <> 'canceled'`,
      [day],
    );
    return { day, subscriptions: inserted.rowCount ?? 0 };
  });
}

/** The worker job that records today's snapshot every hour (the last run of a day is its end). */
export function revenueSnapshotJob(options: { database: Database; logger: Logger; now?: () => Date }): Job {
  return {
    name: 'revenue-snapshot',
    intervalMs: 3_600_000,
    async run() {
      await recordRevenueSnapshot(options.database, { now: (options.now ?? (() => new Date()))() });
    },
  };
}

export interface Ratio {
  numerator: number;
  denominator: number;
  /** numerator ÷ denominator, half up to 4 decimals ("0.3333"); null when the denominator is 0. */
  rate: string | null;
}

export interface DayMetrics {
  day: string;
  /** false: no snapshot of that day (the job did not run); every figure is null. */
  recorded: boolean;
  /** minor units of the base currency */
  mrrMinor: bigint | null;
  arrMinor: bigint | null;
  arpuMinor: bigint | null;
  subscriptions: { trialing: number; active: number; pastDue: number; unpaid: number } | null;
  payingTeams: number | null;
  /** trials that ended this day (numerator: became active). */
  trialConversion: Ratio | null;
  /** live subscriptions at the start of the day (denominator) and those canceled during it. */
  logoChurn: Ratio | null;
  /** MRR lost to cancellations and downgrades (numerator, minor units) ÷ MRR at the start of the day. */
  revenueChurn: Ratio | null;
}

export interface RevenueMetrics {
  baseCurrency: Currency;
  from: string;
  to: string;
  days: DayMetrics[];
}

const datePattern = /^\d{4}-\d{2}-\d{2}$/;

function invalid(path: string, message: string, hint?: string): TollgateError {
  return new TollgateError('validation_failed', `${path}: ${message}`, {
    ...(hint ? { hint } : {}),
    details: { issues: [{ path, message }] },
  });
}

/** A day as YYYY-MM-DD (a real calendar day); validation_failed otherwise. */
export function parseDay(text: string, path: string): string {
  const valid =
    typeof text === 'string' && datePattern.test(text) && !Number.isNaN(startOfDay(text).getTime())
      ? dayOf(startOfDay(text)) === text
      : false;
  if (!valid) throw invalid(path, `${JSON.stringify(text)} is not a day such as 2026-03-01`, 'write YYYY-MM-DD');
  return text;
}

/** The range asked for: `to` defaults to today, `from` to 29 days before `to`. */
export function metricsRange(input: { from?: string | undefined; to?: string | undefined; now: Date }): {
  from: string;
  to: string;
} {
  const to = input.to === undefined ? dayOf(input.now) : parseDay(input.to, 'to');
  const from =
    input.from === undefined ? dayOf(new Date(startOfDay(to).getTime() - 29 * dayMs)) : parseDay(input.from, 'from');
  if (from > to) throw invalid('from', `${from} is after to (${to})`, 'give a from on or before to');
  const days = (startOfDay(to).getTime() - startOfDay(from).getTime()) / dayMs + 1;
  if (days > maxMetricsDays) {
    throw invalid('to', `the range has ${days} days; at most ${maxMetricsDays}`, 'ask for a shorter range');
  }
  return { from, to };
}

/** The rate scaled by 10^12 of each currency in force at `at` (convertToBase: not_found without one). */
async function ratesAt(
  db: Queryable,
  currencies: Iterable<string>,
  at: Date,
  baseCurrency: Currency,
): Promise<Map<string, bigint>> {
  const rates = new Map<string, bigint>();
  for (const currency of currencies) {
    if (rates.has(currency)) continue;
    const converted = await convertToBase(db, { amountMinor: 0n, currency: currency as Currency, at, baseCurrency });
    rates.set(currency, scaledDecimal(converted.rate, rateDecimals) ?? 0n);
  }
  return rates;
}

const paying = (row: SnapshotRow) => row.status === 'active' || row.status === 'past_due';

/**
 * A row's monthly amount in base-currency minor units, exactly: an annual fee is a twelfth of it a
 * month (so the figure is kept in twelfths and divided once), then times the exact rate.
 */
function monthlyInBase(row: SnapshotRow, rates: Map<string, bigint>, baseCurrency: Currency): Decimal {
  const amount = BigInt(row.amount_minor);
  const twelfths = row.billing_interval === 'month' ? amount * 12n : amount;
  const rate = rates.get(row.currency) ?? 0n;
  const shift = rateDecimals + minorUnitsOf(row.currency as Currency) - minorUnitsOf(baseCurrency);
  // An exponent in the string keeps the product exact; only the division by 12 is not a decimal.
  return new MoneyDecimal(`${twelfths * rate}e${-shift}`).div(12);
}

function ratio(numerator: number, denominator: number): Ratio {
  return {
    numerator,
    denominator,
    rate:
      denominator === 0
        ? null
        : new MoneyDecimal(numerator).div(denominator).toDecimalPlaces(4, Decimal.ROUND_HALF_UP).toFixed(4),
  };
}

function mrrOf(rows: SnapshotRow[], rates: Map<string, bigint>, baseCurrency: Currency): Decimal {
  let total = new MoneyDecimal(0);
  for (const row of rows) if (paying(row)) total = total.plus(monthlyInBase(row, rates, baseCurrency));
  return total;
}

/** Exact MRR per team (paying subscriptions only). */
function mrrByTeam(rows: SnapshotRow[], rates: Map<string, bigint>, baseCurrency: Currency): Map<string, Decimal> {
  const teams = new Map<string, Decimal>();
  for (const row of rows) {
    const current = teams.get(row.team_id) ?? new MoneyDecimal(0);
    teams.set(row.team_id, paying(row) ? current.plus(monthlyInBase(row, rates, baseCurrency)) : current);
  }
  return teams;
}

/** The figures of `day` from its end-of-day rows and the previous day's (its start), if recorded. */
async function metricsOfDay(
  db: Queryable,
  input: { day: string; rows: SnapshotRow[]; previous: SnapshotRow[] | undefined; now: Date; baseCurrency: Currency },
): Promise<DayMetrics> {
  const { rows, previous, baseCurrency } = input;
  const endOfDay = new Date(Math.min(startOfDay(nextDay(input.day)).getTime() - 1, input.now.getTime()));
  const rates = await ratesAt(
    db,
    rows.filter(paying).map((row) => row.currency),
    endOfDay,
    baseCurrency,
  );
  const mrrExact = mrrOf(rows, rates, baseCurrency);
  const mrrMinor = roundMinorUnits(mrrExact);
  const payingTeams = new Set(rows.filter((row) => paying(row) && BigInt(row.amount_minor) > 0n).map((r) => r.team_id));
  const count = (status: SnapshotStatus) => rows.filter((row) => row.status === status).length;

  let trialConversion: Ratio | null = null;
  let logoChurn: Ratio | null = null;
  let revenueChurn: Ratio | null = null;
  if (previous) {
    const byId = new Map(rows.map((row) => [row.subscription_id, row]));
    const liveTeams = new Set(rows.map((row) => row.team_id));
    const ended = previous.filter(
      (row) => row.status === 'trialing' && byId.get(row.subscription_id)?.status !== 'trialing',
    );
    const converted = ended.filter((row) => byId.get(row.subscription_id)?.status === 'active');
    trialConversion = ratio(converted.length, ended.length);
    // A subscription replaced by another of the same team (a checkout leaving a free plan) is no churn.
    const canceled = previous.filter((row) => !byId.has(row.subscription_id) && !liveTeams.has(row.team_id));
    logoChurn = ratio(canceled.length, previous.length);
    // Both sides at the rates of the start of the day, so an exchange-rate move is not churn.
    const startRates = await ratesAt(
      db,
      [...previous, ...rows].filter(paying).map((row) => row.currency),
      new Date(startOfDay(input.day).getTime() - 1),
      baseCurrency,
    );
    const before = mrrByTeam(previous, startRates, baseCurrency);
    const after = mrrByTeam(rows, startRates, baseCurrency);
    const payingAfter = new Set(rows.filter(paying).map((row) => row.team_id));
    let lost = new MoneyDecimal(0);
    for (const [team, mrr] of before) {
      if (!liveTeams.has(team)) lost = lost.plus(mrr);
      else if (payingAfter.has(team)) {
        const now = after.get(team) ?? new MoneyDecimal(0);
        if (now.lt(mrr)) lost = lost.plus(mrr.minus(now));
      }
    }
    revenueChurn = ratio(
      Number(roundMinorUnits(lost)),
      Number(roundMinorUnits(mrrOf(previous, startRates, baseCurrency))),
    );
  }
  return {
    day: input.day,
    recorded: true,
    mrrMinor,
    arrMinor: mrrMinor * 12n,
    arpuMinor: payingTeams.size > 0 ? roundMinorUnits(mrrExact.div(payingTeams.size)) : null,
    subscriptions: {
      trialing: count('trialing'),
      active: count('active'),
      pastDue: count('past_due'),
      unpaid: count('unpaid'),
    },
    payingTeams: payingTeams.size,
    trialConversion,
    logoChurn,
    revenueChurn,
  };
}

/** Revenue metrics for every day of `[from, to]` (YYYY-MM-DD, UTC days); days after today are left out. */
export async function revenueMetrics(
  db: Queryable,
  input: { from?: string | undefined; to?: string | undefined; baseCurrency: Currency; now?: Date },
): Promise<RevenueMetrics> {
  const now = input.now ?? new Date();
  const { from, to } = metricsRange({ from: input.from, to: input.to, now });
  const today = dayOf(now);
  const first = previousDay(from);
  const recorded = await db.query<SnapshotRow & { day: string }>(
    `SELECT to_char(d.day, 'YYYY-MM-DD') AS day, s.subscription_id, s.team_id, s.status, s.currency,
       s.billing_interval, s.amount_minor::text
     FROM revenue_snapshot_days d LEFT JOIN subscription_daily_snapshots s ON s.day = d.day
     WHERE d.day BETWEEN $1 AND $2`,
    [first, to],
  );
  const byDay = new Map<string, SnapshotRow[]>();
  for (const row of recorded.rows) {
    const rows = byDay.get(row.day) ?? [];
    if (row.subscription_id) rows.push({ ...row, currency: row.currency.trim() });
    byDay.set(row.day, rows);
  }
  if (today >= first && today <= to) {
    const live = await db.query<SnapshotRow>(liveSubscriptions);
    byDay.set(
      today,
      live.rows.map((row) => ({ ...row, currency: row.currency.trim() })),
    );
  }
  const days: DayMetrics[] = [];
  for (let day = from; day <= to && day <= today; day = nextDay(day)) {
    const rows = byDay.get(day);
    if (!rows) {
      days.push({
        day,
        recorded: false,
        mrrMinor: null,
        arrMinor: null,
        arpuMinor: null,
        subscriptions: null,
        payingTeams: null,
        trialConversion: null,
        logoChurn: null,
        revenueChurn: null,
      });
      continue;
    }
    days.push(
      await metricsOfDay(db, {
        day,
        rows,
        previous: byDay.get(previousDay(day)),
        now,
        baseCurrency: input.baseCurrency,
      }),
    );
  }
  return { baseCurrency: input.baseCurrency, from, to, days };
}
