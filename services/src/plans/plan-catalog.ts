import type { z } from 'zod';
import type { Currency } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import {
  type BillingInterval,
  derivedAnnualMinor,
  fromMinorUnits,
  normalizePercent,
  type PlanCreateInput,
  type PlanEntitlements,
  type PlanOverage,
  type PlanPriceInput,
  type PlanTerms,
  type PlanUpdateInput,
  planConsistencyIssues,
  planCreateSchema,
  planSlugSchema,
  planUpdateSchema,
  toMinorUnits,
} from './plan-schemas.js';

/**
 * The plan catalog (docs/plans.md): plans operators sell, as numbered versions of a slug (rows of
 * `plans`, migrations 0014 and 0016) with their base fees (`plan_prices`). A change to a version
 * with live subscribers writes the next version and leaves them where they are; a change to one
 * without is made in place. Call the writers inside a transaction; refused input throws before
 * anything is written.
 *
 * The gateway reads plans through team-policy.ts and caches each team's policy for its TTL
 * (30 s by default); nothing here invalidates that cache, so a change reaches gateways within it.
 */

/** A base fee: explicit as the operator gave it, or an annual one derived from the monthly one. */
export interface PlanPrice {
  currency: Currency;
  interval: BillingInterval;
  /** minor units, e.g. cents */
  amountMinor: number;
  /** Major units with the currency's places, e.g. "49.00". */
  amount: string;
  source: 'explicit' | 'derived';
}

/** One version of a plan. */
export interface Plan extends Omit<PlanTerms, 'prices'> {
  id: string;
  slug: string;
  version: number;
  /** The newest version of this slug. */
  latestVersion: number;
  isDefault: boolean;
  /** Explicit prices, then the derived annual ones; by currency, month before year. */
  prices: PlanPrice[];
  archivedAt: Date | null;
  /** Live (not canceled) subscriptions on this version, and on every version of the slug. */
  subscribers: number;
  subscribersAllVersions: number;
  createdByUserId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface PlanRow {
  id: string;
  slug: string;
  version: number;
  name: string;
  description: string;
  trial_days: number;
  annual_discount_percent: string | null;
  monthly_call_quota: string | null;
  included_quotas: Record<string, number>;
  overage_allowed: boolean;
  overage_prices: PlanOverage;
  rate_limit_per_second: number | null;
  rate_limit_per_minute: number | null;
  rate_limit_per_hour: number | null;
  rate_limit_per_day: number | null;
  entitlements: PlanEntitlements;
  is_default: boolean;
  archived_at: Date | null;
  created_by_user_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const columns = `p.id, p.slug, p.version, p.name, p.description, p.trial_days, p.annual_discount_percent::text,
  p.monthly_call_quota::text, p.included_quotas, p.overage_allowed, p.overage_prices, p.rate_limit_per_second,
  p.rate_limit_per_minute, p.rate_limit_per_hour, p.rate_limit_per_day, p.entitlements, p.is_default, p.archived_at,
  p.created_by_user_id, p.created_at, p.updated_at`;

interface PriceRow {
  plan_id: string;
  currency: Currency;
  interval: BillingInterval;
  amount_minor: string;
}

const intervalOrder = { month: 0, year: 1 } as const;

/** The explicit prices of a version plus the annual ones its discount derives. */
function pricesOf(rows: PriceRow[], discountPercent: string | null): PlanPrice[] {
  const prices: PlanPrice[] = rows.map((row) => ({
    currency: row.currency,
    interval: row.interval,
    amountMinor: Number(row.amount_minor),
    amount: fromMinorUnits(Number(row.amount_minor), row.currency),
    source: 'explicit',
  }));
  if (discountPercent !== null) {
    for (const monthly of prices.filter((price) => price.interval === 'month')) {
      if (prices.some((price) => price.currency === monthly.currency && price.interval === 'year')) continue;
      const amountMinor = derivedAnnualMinor(monthly.amountMinor, discountPercent);
      prices.push({
        currency: monthly.currency,
        interval: 'year',
        amountMinor,
        amount: fromMinorUnits(amountMinor, monthly.currency),
        source: 'derived',
      });
    }
  }
  return prices.sort(
    (a, b) => a.currency.localeCompare(b.currency) || intervalOrder[a.interval] - intervalOrder[b.interval],
  );
}

function toPlan(
  row: PlanRow,
  priceRows: PriceRow[],
  counts: { latestVersion: number; subscribers: number; subscribersAllVersions: number },
): Plan {
  const discount = row.annual_discount_percent === null ? null : normalizePercent(row.annual_discount_percent);
  return {
    id: row.id,
    slug: row.slug,
    version: row.version,
    latestVersion: counts.latestVersion,
    name: row.name,
    description: row.description,
    trialDays: row.trial_days,
    prices: pricesOf(priceRows, discount),
    annualDiscountPercent: discount,
    included: {
      calls: row.monthly_call_quota === null ? null : Number(row.monthly_call_quota),
      ...row.included_quotas,
    },
    overageAllowed: row.overage_allowed,
    overage: row.overage_prices,
    rateLimits: {
      perSecond: row.rate_limit_per_second,
      perMinute: row.rate_limit_per_minute,
      perHour: row.rate_limit_per_hour,
      perDay: row.rate_limit_per_day,
    },
    entitlements: row.entitlements,
    isDefault: row.is_default,
    archivedAt: row.archived_at,
    subscribers: counts.subscribers,
    subscribersAllVersions: counts.subscribersAllVersions,
    createdByUserId: row.created_by_user_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Reads the prices and counts of some versions and builds them, in the order given. */
async function assemble(db: Queryable, rows: PlanRow[]): Promise<Plan[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.id);
  const slugs = [...new Set(rows.map((row) => row.slug))];
  const prices = await db.query<PriceRow>(
    'SELECT plan_id, currency, interval, amount_minor::text FROM plan_prices WHERE plan_id = ANY($1::uuid[])',
    [ids],
  );
  const counts = await db.query<{ slug: string; id: string; version: number; subscribers: string }>(
    `SELECT p.slug, p.id, p.version, count(s.id)::text AS subscribers
     FROM plans p LEFT JOIN subscriptions s ON s.plan_id = p.id AND s.status <> 'canceled'
     WHERE p.slug = ANY($1::text[]) GROUP BY p.slug, p.id, p.version`,
    [slugs],
  );
  return rows.map((row) => {
    const versions = counts.rows.filter((count) => count.slug === row.slug);
    return toPlan(
      row,
      prices.rows.filter((price) => price.plan_id === row.id),
      {
        latestVersion: Math.max(row.version, ...versions.map((count) => count.version)),
        subscribers: Number(versions.find((count) => count.id === row.id)?.subscribers ?? 0),
        subscribersAllVersions: versions.reduce((sum, count) => sum + Number(count.subscribers), 0),
      },
    );
  });
}

/** The newest version of each plan, by slug; archived plans only with `includeArchived`. */
export async function listPlans(db: Queryable, options: { includeArchived?: boolean } = {}): Promise<Plan[]> {
  const result = await db.query<PlanRow>(
    `SELECT * FROM (SELECT DISTINCT ON (p.slug) ${columns} FROM plans p ORDER BY p.slug, p.version DESC) latest
     ${options.includeArchived ? '' : 'WHERE archived_at IS NULL'} ORDER BY slug`,
  );
  return assemble(db, result.rows);
}

/** A plan by slug: its newest version, or `version`; undefined when there is no such plan or version. */
export async function findPlan(
  db: Queryable,
  slug: string,
  options: { version?: number } = {},
): Promise<Plan | undefined> {
  const result = await db.query<PlanRow>(
    options.version === undefined
      ? `SELECT ${columns} FROM plans p WHERE p.slug = $1 ORDER BY p.version DESC LIMIT 1`
      : `SELECT ${columns} FROM plans p WHERE p.slug = $1 AND p.version = $2`,
    options.version === undefined ? [slug.toLowerCase()] : [slug.toLowerCase(), options.version],
  );
  return (await assemble(db, result.rows))[0];
}

async function findPlanOrFail(db: Queryable, slug: string, version?: number): Promise<Plan> {
  const plan = await findPlan(db, slug, version === undefined ? {} : { version });
  if (!plan) {
    throw new TollgateError(
      'not_found',
      version === undefined ? `no plan ${slug}` : `plan ${slug} has no version ${version}`,
      {
        hint: 'tollgate plans list shows them',
      },
    );
  }
  return plan;
}

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** Input that fails its schema, or the rules across fields: 400 validation_failed naming the first problem. */
function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown): z.output<Schema> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw invalid(
    parsed.error.issues.map((issue) => ({
      path: issue.path.map((part) => (typeof part === 'string' ? snakeCase(part) : String(part))).join('.'),
      message: issue.message,
    })),
  );
}

function invalid(issues: { path: string; message: string }[]): TollgateError {
  const first = issues[0];
  return new TollgateError(
    'validation_failed',
    first ? `${first.path || 'body'}: ${first.message}` : 'the plan is invalid',
    {
      details: { issues },
    },
  );
}

function checkConsistency(terms: PlanTerms): void {
  const issues = planConsistencyIssues(terms);
  if (issues.length > 0) throw invalid(issues);
}

/** The terms of a stored version, with its explicit prices only (what the operator gave). */
function termsOf(plan: Plan): PlanTerms {
  return {
    name: plan.name,
    description: plan.description,
    trialDays: plan.trialDays,
    prices: plan.prices
      .filter((price) => price.source === 'explicit')
      .map((price) => ({ currency: price.currency, interval: price.interval, amount: price.amount })),
    annualDiscountPercent: plan.annualDiscountPercent,
    included: plan.included,
    overageAllowed: plan.overageAllowed,
    overage: plan.overage,
    rateLimits: plan.rateLimits,
    entitlements: plan.entitlements,
  };
}

type Change = z.output<typeof planUpdateSchema>;

/** `base` with what `change` sets: lists and maps replace, rate limits merge window by window. */
function merge(base: PlanTerms, change: Change): PlanTerms {
  const limits = change.rate_limits ?? {};
  return {
    name: change.name ?? base.name,
    description: change.description ?? base.description,
    trialDays: change.trial_days ?? base.trialDays,
    prices: change.prices ?? base.prices,
    annualDiscountPercent:
      change.annual_discount_percent === undefined ? base.annualDiscountPercent : change.annual_discount_percent,
    included: change.included ?? base.included,
    overageAllowed: change.overage_allowed ?? base.overageAllowed,
    overage: (change.overage as PlanOverage | undefined) ?? base.overage,
    rateLimits: {
      perSecond: limits.per_second === undefined ? base.rateLimits.perSecond : limits.per_second,
      perMinute: limits.per_minute === undefined ? base.rateLimits.perMinute : limits.per_minute,
      perHour: limits.per_hour === undefined ? base.rateLimits.perHour : limits.per_hour,
      perDay: limits.per_day === undefined ? base.rateLimits.perDay : limits.per_day,
    },
    entitlements: change.entitlements ?? base.entitlements,
  };
}

/** What a plan created with nothing but a slug and a name is (the column defaults of 0014 and 0016). */
const blankTerms: PlanTerms = {
  name: '',
  description: '',
  trialDays: 14,
  prices: [],
  annualDiscountPercent: null,
  included: { calls: null },
  overageAllowed: false,
  overage: {},
  rateLimits: { perSecond: null, perMinute: null, perHour: 1000, perDay: null },
  entitlements: {},
};

/** Field names as the API spells them, compared after prices are put in one order. */
function comparable(terms: PlanTerms): Record<string, unknown> {
  const prices = [...terms.prices]
    .map((price) => ({ ...price, amountMinor: toMinorUnits(price.amount, price.currency) }))
    .map(({ currency, interval, amountMinor }) => `${currency}:${interval}:${amountMinor}`)
    .sort();
  // Only calls keeps a null (unlimited); another metric without a quota is simply not stored.
  const included = Object.fromEntries(
    Object.entries(terms.included).filter(([metric, value]) => metric === 'calls' || value !== null),
  );
  if (included.calls === undefined) included.calls = null;
  return {
    name: terms.name,
    description: terms.description,
    trial_days: terms.trialDays,
    prices,
    annual_discount_percent: terms.annualDiscountPercent,
    included: sortedKeys(included),
    overage_allowed: terms.overageAllowed,
    overage: sortedKeys(terms.overage),
    rate_limits: terms.rateLimits,
    entitlements: sortedKeys(terms.entitlements),
  };
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortedKeys((value as Record<string, unknown>)[key])]),
  );
}

function changedFields(before: PlanTerms, after: PlanTerms): string[] {
  const a = comparable(before);
  const b = comparable(after);
  return Object.keys(b).filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]));
}

/** The row values of some terms, as $2.. of the INSERT and UPDATE below. */
function rowValues(terms: PlanTerms): unknown[] {
  const { calls, ...others } = terms.included;
  const included = Object.fromEntries(Object.entries(others).filter(([, value]) => value !== null));
  return [
    terms.name,
    terms.description,
    terms.trialDays,
    terms.annualDiscountPercent,
    calls ?? null,
    JSON.stringify(included),
    terms.overageAllowed,
    JSON.stringify(terms.overage),
    terms.rateLimits.perSecond,
    terms.rateLimits.perMinute,
    terms.rateLimits.perHour,
    terms.rateLimits.perDay,
    JSON.stringify(terms.entitlements),
  ];
}

async function writePrices(tx: Queryable, planId: string, prices: PlanPriceInput[]): Promise<void> {
  await tx.query('DELETE FROM plan_prices WHERE plan_id = $1', [planId]);
  if (prices.length === 0) return;
  await tx.query(
    `INSERT INTO plan_prices (plan_id, currency, interval, amount_minor)
     SELECT $1::uuid, unnest($2::text[]), unnest($3::text[]), unnest($4::bigint[])`,
    [
      planId,
      prices.map((price) => price.currency),
      prices.map((price) => price.interval),
      prices.map((price) => String(toMinorUnits(price.amount, price.currency))),
    ],
  );
}

async function insertVersion(
  tx: Queryable,
  slug: string,
  version: number,
  terms: PlanTerms,
  options: { isDefault: boolean; createdByUserId: string | null },
): Promise<string> {
  const result = await tx.query<{ id: string }>(
    `INSERT INTO plans (slug, version, name, description, trial_days, annual_discount_percent, monthly_call_quota,
       included_quotas, overage_allowed, overage_prices, rate_limit_per_second, rate_limit_per_minute,
       rate_limit_per_hour, rate_limit_per_day, entitlements, is_default, created_by_user_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10::jsonb, $11, $12, $13, $14, $15::jsonb, $16, $17)
     RETURNING id`,
    [slug, version, ...rowValues(terms), options.isDefault, options.createdByUserId],
  );
  const id = (result.rows[0] as { id: string }).id;
  await writePrices(tx, id, terms.prices);
  return id;
}

function slugTaken(slug: string): TollgateError {
  return new TollgateError('slug_taken', `a plan with the slug "${slug}" exists`, {
    hint: `choose another slug, or change it with tollgate plans update ${slug}`,
  });
}

/** Creates version 1 of a plan. */
export async function createPlan(
  tx: Queryable,
  input: PlanCreateInput,
  options: { createdByUserId?: string | null } = {},
): Promise<Plan> {
  const fields = parseInput(planCreateSchema, input);
  const terms = merge({ ...blankTerms, name: fields.name }, fields);
  checkConsistency(terms);
  const existing = await tx.query('SELECT 1 FROM plans WHERE slug = $1 LIMIT 1', [fields.slug]);
  if (existing.rowCount > 0) throw slugTaken(fields.slug);
  try {
    await insertVersion(tx, fields.slug, 1, terms, {
      isDefault: false,
      createdByUserId: options.createdByUserId ?? null,
    });
  } catch (error) {
    if ((error as { code?: string }).code === '23505') throw slugTaken(fields.slug);
    throw error;
  }
  return findPlanOrFail(tx, fields.slug);
}

/** Takes the row locks of every version of a slug, so changes to one plan happen one at a time. */
async function lockPlan(tx: Queryable, slug: string): Promise<void> {
  await tx.query('SELECT id FROM plans WHERE slug = $1 FOR UPDATE', [slug.toLowerCase()]);
}

export interface PlanUpdateResult {
  plan: Plan;
  /** A version was added (the one changed had live subscribers), or the change was made in place. */
  newVersion: boolean;
  /** The API's names of the fields whose value changed; empty: nothing was written. */
  changed: string[];
  /** The version that was changed (the previous one when `newVersion`). */
  fromVersion: number;
}

/**
 * Changes a plan's newest version. When live subscriptions use it, the change becomes the next
 * version and they stay on theirs (until migrated); the default flag moves with the newest version,
 * so teams without a subscription get the change. Otherwise the version is changed in place.
 * An archived plan is refused (409 plan_archived); a change that changes nothing writes nothing.
 */
export async function updatePlan(
  tx: Queryable,
  slug: string,
  patch: PlanUpdateInput,
  options: { updatedByUserId?: string | null } = {},
): Promise<PlanUpdateResult> {
  const change = parseInput(planUpdateSchema, patch);
  if (Object.values(change).every((value) => value === undefined)) {
    throw new TollgateError('validation_failed', 'body: give at least one field to change');
  }
  await lockPlan(tx, slug);
  const current = await findPlanOrFail(tx, slug);
  if (current.archivedAt) {
    throw new TollgateError('plan_archived', `the plan ${current.slug} is archived and cannot change`, {
      hint: 'create a new plan instead',
    });
  }
  const before = termsOf(current);
  const after = merge(before, change);
  checkConsistency(after);
  const changed = changedFields(before, after);
  if (changed.length === 0) return { plan: current, newVersion: false, changed, fromVersion: current.version };
  if (current.subscribers > 0) {
    if (current.isDefault) await tx.query('UPDATE plans SET is_default = false WHERE id = $1', [current.id]);
    await insertVersion(tx, current.slug, current.version + 1, after, {
      isDefault: current.isDefault,
      createdByUserId: options.updatedByUserId ?? null,
    });
    return {
      plan: await findPlanOrFail(tx, current.slug),
      newVersion: true,
      changed,
      fromVersion: current.version,
    };
  }
  await tx.query(
    `UPDATE plans SET name = $2, description = $3, trial_days = $4, annual_discount_percent = $5,
       monthly_call_quota = $6, included_quotas = $7::jsonb, overage_allowed = $8, overage_prices = $9::jsonb,
       rate_limit_per_second = $10, rate_limit_per_minute = $11, rate_limit_per_hour = $12, rate_limit_per_day = $13,
       entitlements = $14::jsonb, updated_at = now()
     WHERE id = $1`,
    [current.id, ...rowValues(after)],
  );
  await writePrices(tx, current.id, after.prices);
  return { plan: await findPlanOrFail(tx, current.slug), newVersion: false, changed, fromVersion: current.version };
}

/**
 * Archives a plan, every version of it: no new subscriptions; live ones keep their version. The
 * default plan cannot be archived (teams without a subscription use it). Archiving an archived plan
 * changes nothing (`archived: false`).
 */
export async function archivePlan(tx: Queryable, slug: string): Promise<{ plan: Plan; archived: boolean }> {
  await lockPlan(tx, slug);
  const current = await findPlanOrFail(tx, slug);
  if (current.archivedAt) return { plan: current, archived: false };
  if (current.isDefault) {
    throw new TollgateError(
      'plan_is_default',
      `${current.slug} is the default plan, which teams without a subscription use`,
      {
        hint: 'the default plan cannot be archived',
      },
    );
  }
  await tx.query('UPDATE plans SET archived_at = now(), updated_at = now() WHERE slug = $1 AND archived_at IS NULL', [
    current.slug,
  ]);
  return { plan: await findPlanOrFail(tx, current.slug), archived: true };
}

/** Is `slug` a well-formed plan slug? (A bad one in a URL is a 404 for reads, 400 for writes.) */
export function isPlanSlug(slug: string): boolean {
  return planSlugSchema.safeParse(slug).success;
}

/** The interval and currency a subscription would pay, or undefined when the plan has no such price. */
export function planPrice(plan: Plan, currency: Currency, interval: BillingInterval): PlanPrice | undefined {
  return plan.prices.find((price) => price.currency === currency && price.interval === interval);
}
