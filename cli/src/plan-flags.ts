import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { CliError, exitCodes } from './cli-error.js';
import type { Column } from './output/table.js';

/** A metered price as the API takes it (docs/billing.md#pricing-models). */
type MeteredPrice =
  | { model: 'per_unit'; unit_price: string }
  | { model: 'graduated' | 'volume'; tiers: { up_to: number | null; unit_price: string; flat_fee?: string }[] }
  | { model: 'package'; package_size: number; package_price: string };

/** A plan version as `/v1/plans` answers it; the subscriber counts only for operators. */
export interface PlanDocument {
  id: string;
  slug: string;
  version: number;
  latest_version: number;
  name: string;
  description: string;
  is_default: boolean;
  trial_days: number;
  prices: {
    currency: string;
    interval: 'month' | 'year';
    amount: string;
    amount_minor: number;
    source: 'explicit' | 'derived';
  }[];
  annual_discount_percent: string | null;
  included: Record<string, number | null>;
  overage_allowed: boolean;
  overage: Record<string, Record<string, MeteredPrice>>;
  rate_limits: {
    per_second: number | null;
    per_minute: number | null;
    per_hour: number | null;
    per_day: number | null;
  };
  entitlements: Record<string, boolean | number | string>;
  archived_at: string | null;
  created_at: string;
  updated_at: string;
  subscribers?: number;
  subscribers_all_versions?: number;
}

const usage = (flag: string, problem: string, text: string, hint: string) =>
  new CliError('usage_error', `--${flag} ${problem} (got "${text}")`, { hint, exitCode: exitCodes.usage });

const rateFlag = (window: string) =>
  Flags.string({ description: `Calls a team may make per ${window}, or "none" for no limit`, helpValue: 'N|none' });

/** The flags `plans create` and `plans update` share; on update each replaces what it names. */
export const planFlags = {
  name: Flags.string({ description: 'Name shown to people (1 to 200 characters)' }),
  description: Flags.string({ description: 'A sentence or two for people choosing a plan' }),
  price: Flags.string({
    description:
      'Base fee CURRENCY:INTERVAL:AMOUNT, amount in major units, e.g. USD:month:49.00 or EUR:year:459 (repeatable; replaces all prices)',
    helpValue: 'CUR:month|year:AMOUNT',
    multiple: true,
  }),
  'annual-discount': Flags.string({
    description:
      'Percent off 12 monthly fees for currencies without an explicit :year: price, e.g. 15; "none" for no derived annual price',
    helpValue: 'PERCENT|none',
  }),
  'trial-days': Flags.integer({ description: 'Free days before the first charge (0 to 365) [default: 14]', min: 0 }),
  included: Flags.string({
    description:
      'Units included per billing period, METRIC=N or METRIC=unlimited: calls, bandwidth (bytes), storage (bytes) or a custom metric (repeatable; replaces all)',
    helpValue: 'METRIC=N',
    multiple: true,
  }),
  overage: Flags.string({
    description:
      'Price beyond the included units, METRIC:CURRENCY=PRICE: a decimal for a price per unit (calls:USD=0.0005) or a JSON price (repeatable; with --overage-file, replaces all overage prices)',
    helpValue: 'METRIC:CUR=PRICE|JSON',
    multiple: true,
  }),
  'overage-file': Flags.string({
    description:
      'A JSON file {"METRIC": {"CURRENCY": PRICE}} with overage prices; --overage entries apply on top of it',
    helpValue: 'FILE',
  }),
  'overage-allowed': Flags.boolean({
    description: 'Serve and bill calls beyond the quota (--no-overage-allowed: answer 429 quota_exhausted)',
    allowNo: true,
  }),
  entitlement: Flags.string({
    description:
      'A feature flag passed to plugins and upstreams, NAME=VALUE: true, false, a number or text (repeatable; replaces all)',
    helpValue: 'NAME=VALUE',
    multiple: true,
  }),
  'rate-per-second': rateFlag('second'),
  'rate-per-minute': rateFlag('minute'),
  'rate-per-hour': rateFlag('hour'),
  'rate-per-day': rateFlag('day'),
};

const priceHint = 'pass --price CURRENCY:INTERVAL:AMOUNT, like --price USD:month:49.00 or --price EUR:year:459';

/** `USD:month:49.00` -> a price; the amount is the API's to judge (places, sign). */
export function parsePriceFlag(text: string): { currency: string; interval: string; amount: string } {
  const [currency, interval, amount, ...rest] = text.split(':');
  if (!currency || !interval || amount === undefined || rest.length > 0 || amount.trim() === '') {
    throw usage('price', 'must be CURRENCY:INTERVAL:AMOUNT', text, priceHint);
  }
  const normalized = interval.trim().toLowerCase();
  if (normalized !== 'month' && normalized !== 'year') {
    throw usage('price', 'interval must be month or year', text, priceHint);
  }
  return { currency: currency.trim().toUpperCase(), interval: normalized, amount: amount.trim() };
}

/** `15`, `12.5` or `none`. */
function parseDiscount(text: string): string | null {
  if (text.trim().toLowerCase() === 'none') return null;
  if (!/^\d+(\.\d+)?$/.test(text.trim())) {
    throw usage('annual-discount', 'must be a percentage like 15 or none', text, 'pass --annual-discount 15');
  }
  return text.trim();
}

/** `calls=100000`, `calls=100_000`, `bandwidth=unlimited`. */
export function parseIncludedFlag(text: string): [string, number | null] {
  const split = text.indexOf('=');
  const metric = text.slice(0, split).trim();
  const value = text
    .slice(split + 1)
    .trim()
    .replaceAll('_', '');
  const hint = 'pass --included METRIC=N, like --included calls=100000 or --included storage=unlimited';
  if (split <= 0) throw usage('included', 'must be METRIC=N', text, hint);
  if (value.toLowerCase() === 'unlimited') return [metric, null];
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw usage('included', 'needs a whole number of units or unlimited', text, hint);
  }
  return [metric, Number(value)];
}

function parseJson(flag: string, json: string, text: string, hint: string): unknown {
  try {
    return JSON.parse(json);
  } catch (error) {
    throw usage(flag, `is not valid JSON: ${(error as Error).message}`, text, hint);
  }
}

const overageHint =
  'pass --overage METRIC:CURRENCY=0.0005 for a price per unit, or --overage \'calls:USD={"model":"graduated","tiers":[...]}\'';

/** `calls:USD=0.0005` (per unit) or `calls:USD={"model":...}` -> [metric, currency, price]. */
export function parseOverageFlag(text: string): [string, string, unknown] {
  const split = text.indexOf('=');
  const [metric, currency, ...rest] = (split === -1 ? text : text.slice(0, split)).split(':');
  if (split === -1 || !metric?.trim() || !currency?.trim() || rest.length > 0) {
    throw usage('overage', 'must be METRIC:CURRENCY=PRICE', text, overageHint);
  }
  const value = text.slice(split + 1).trim();
  const price = /^\d+(\.\d+)?$/.test(value)
    ? { model: 'per_unit', unit_price: value }
    : parseJson('overage', value, text, overageHint);
  if (typeof price !== 'object' || price === null || Array.isArray(price)) {
    throw usage('overage', 'price must be a decimal or a JSON object with a model', text, overageHint);
  }
  return [metric.trim(), currency.trim().toUpperCase(), price];
}

/** `sso=true`, `max_seats=10`, `support=email`, `tier="5"` (JSON text stays text). */
export function parseEntitlementFlag(text: string): [string, boolean | number | string] {
  const split = text.indexOf('=');
  if (split <= 0) {
    throw usage(
      'entitlement',
      'must be NAME=VALUE',
      text,
      'pass --entitlement sso=true or --entitlement support=email',
    );
  }
  const name = text.slice(0, split).trim();
  const raw = text.slice(split + 1).trim();
  if (raw === 'true' || raw === 'false') return [name, raw === 'true'];
  if (/^-?\d+(\.\d+)?$/.test(raw)) return [name, Number(raw)];
  if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) {
    return [name, parseJson('entitlement', raw, text, 'quote text as "..."') as string];
  }
  return [name, raw];
}

function parseRate(flag: string, text: string): number | null {
  if (text.trim().toLowerCase() === 'none') return null;
  if (!/^\d+$/.test(text.trim())) {
    throw usage(flag, 'must be a whole number of calls or none', text, `pass --${flag} 100 or --${flag} none`);
  }
  return Number(text.trim());
}

async function readOverageFile(path: string): Promise<Record<string, Record<string, unknown>>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError('usage_error', `--overage-file cannot be read: ${(error as Error).message}`, {
      exitCode: exitCodes.usage,
    });
  }
  const hint = 'the file holds {"calls": {"USD": {"model": "per_unit", "unit_price": "0.0005"}}}';
  const value = parseJson('overage-file', text, path, hint);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw usage('overage-file', 'must hold a JSON object of metrics', path, hint);
  }
  return value as Record<string, Record<string, unknown>>;
}

type PlanFlagValues = {
  name?: string | undefined;
  description?: string | undefined;
  price?: string[] | undefined;
  'annual-discount'?: string | undefined;
  'trial-days'?: number | undefined;
  included?: string[] | undefined;
  overage?: string[] | undefined;
  'overage-file'?: string | undefined;
  'overage-allowed'?: boolean | undefined;
  entitlement?: string[] | undefined;
  'rate-per-second'?: string | undefined;
  'rate-per-minute'?: string | undefined;
  'rate-per-hour'?: string | undefined;
  'rate-per-day'?: string | undefined;
};

/**
 * The JSON body fields the flags set, leaving out those not given. Only the flags' own shape is
 * checked here (a usage error, exit 2, before any call); prices, metrics and tiers are the API's to judge.
 */
export async function planBody(flags: PlanFlagValues): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  if (flags.name !== undefined) body.name = flags.name;
  if (flags.description !== undefined) body.description = flags.description;
  if (flags.price !== undefined) body.prices = flags.price.map(parsePriceFlag);
  if (flags['annual-discount'] !== undefined) body.annual_discount_percent = parseDiscount(flags['annual-discount']);
  if (flags['trial-days'] !== undefined) body.trial_days = flags['trial-days'];
  if (flags.included !== undefined) body.included = Object.fromEntries(flags.included.map(parseIncludedFlag));
  if (flags.overage !== undefined || flags['overage-file'] !== undefined) {
    const overage = flags['overage-file'] ? await readOverageFile(flags['overage-file']) : {};
    for (const [metric, currency, price] of (flags.overage ?? []).map(parseOverageFlag)) {
      overage[metric] = { ...(overage[metric] ?? {}), [currency]: price };
    }
    body.overage = overage;
  }
  if (flags['overage-allowed'] !== undefined) body.overage_allowed = flags['overage-allowed'];
  if (flags.entitlement !== undefined)
    body.entitlements = Object.fromEntries(flags.entitlement.map(parseEntitlementFlag));
  const limits: Record<string, number | null> = {};
  for (const window of ['second', 'minute', 'hour', 'day'] as const) {
    const value = flags[`rate-per-${window}`];
    if (value !== undefined) limits[`per_${window}`] = parseRate(`rate-per-${window}`, value);
  }
  if (Object.keys(limits).length > 0) body.rate_limits = limits;
  return body;
}

/** `USD 49.00/month`. */
const formatPrice = (price: PlanDocument['prices'][number]) =>
  `${price.currency} ${price.amount}/${price.interval}${price.source === 'derived' ? ' (derived)' : ''}`;

const formatCount = (value: number | null) => (value === null ? 'unlimited' : String(value));

/** A metered price in a line: `graduated: 0.0005 up to 1000000, then 0.0003`. */
export function formatMeteredPrice(price: MeteredPrice): string {
  switch (price.model) {
    case 'per_unit':
      return `${price.unit_price} per unit`;
    case 'package':
      return `${price.package_price} per ${price.package_size} units`;
    default:
      return `${price.model}: ${price.tiers
        .map((tier) => {
          const fee = tier.flat_fee ? ` + ${tier.flat_fee}` : '';
          return tier.up_to === null ? `then ${tier.unit_price}${fee}` : `${tier.unit_price}${fee} up to ${tier.up_to}`;
        })
        .join(', ')}`;
  }
}

const formatLimit = (value: number | null) => (value === null ? '-' : String(value));

/** One plan version as `label value` lines. */
export function planFields(plan: PlanDocument): [string, string][] {
  const fields: [string, string][] = [
    ['name', plan.name],
    ['slug', plan.slug],
    [
      'version',
      plan.version === plan.latest_version ? String(plan.version) : `${plan.version} (newest: ${plan.latest_version})`,
    ],
    ['id', plan.id],
    ['description', plan.description],
    ['default', plan.is_default ? 'yes' : 'no'],
    ['trial days', String(plan.trial_days)],
    ['prices', plan.prices.map(formatPrice).join(', ')],
    ['annual discount', plan.annual_discount_percent === null ? '' : `${plan.annual_discount_percent}%`],
    [
      'included',
      Object.entries(plan.included)
        .map(([metric, value]) => `${metric}=${formatCount(value)}`)
        .join(', '),
    ],
    ['overage allowed', plan.overage_allowed ? 'yes' : 'no'],
  ];
  for (const [metric, byCurrency] of Object.entries(plan.overage)) {
    for (const [currency, price] of Object.entries(byCurrency)) {
      fields.push([`overage ${metric} ${currency}`, formatMeteredPrice(price)]);
    }
  }
  const limits = plan.rate_limits;
  fields.push(
    [
      'rate limits',
      `${formatLimit(limits.per_second)}/s, ${formatLimit(limits.per_minute)}/min, ${formatLimit(limits.per_hour)}/h, ${formatLimit(limits.per_day)}/day`,
    ],
    [
      'entitlements',
      Object.entries(plan.entitlements)
        .map(([name, value]) => `${name}=${value}`)
        .join(', '),
    ],
    ['archived', plan.archived_at ?? ''],
  );
  if (plan.subscribers !== undefined) {
    fields.push(['subscribers', `${plan.subscribers} (all versions: ${plan.subscribers_all_versions ?? 0})`]);
  }
  fields.push(['created', plan.created_at], ['updated', plan.updated_at]);
  return fields;
}

export const planColumns: Column<PlanDocument>[] = [
  { header: 'slug', value: (plan) => plan.slug },
  { header: 'version', value: (plan) => String(plan.version) },
  { header: 'name', value: (plan) => plan.name },
  {
    header: 'monthly',
    value: (plan) =>
      plan.prices
        .filter((price) => price.interval === 'month')
        .map((price) => `${price.currency} ${price.amount}`)
        .join(','),
  },
  { header: 'calls', value: (plan) => formatCount(plan.included.calls ?? null) },
  { header: 'overage', value: (plan) => (plan.overage_allowed ? 'yes' : 'no') },
  { header: 'trial', value: (plan) => `${plan.trial_days}d` },
  { header: 'status', value: (plan) => (plan.archived_at ? 'archived' : plan.is_default ? 'default' : 'active') },
];

export const operatorPlanColumns: Column<PlanDocument>[] = [
  ...planColumns,
  { header: 'subscribers', value: (plan) => String(plan.subscribers_all_versions ?? 0) },
];

/** What to try next after the API refused a plan command (the HTTP answer carries no hint). */
export function withPlanHint(error: unknown, slug?: string): unknown {
  if (!(error instanceof CliError) || error.hint !== undefined) return error;
  const hints: Record<string, string> = {
    not_found: 'tollgate plans list shows them (--archived for archived ones)',
    slug_taken: `choose another --slug, or change the plan with tollgate plans update ${slug ?? '<slug>'}`,
    plan_archived: 'an archived plan cannot change; create a new plan with tollgate plans create',
    plan_is_default: 'teams without a subscription use the default plan, so it stays on offer',
    validation_failed: 'docs/plans.md describes every field; tollgate plans create --help shows the flag formats',
  };
  const hint = hints[error.code];
  return hint ? new CliError(error.code, error.message, { hint, exitCode: error.exitCode }) : error;
}
