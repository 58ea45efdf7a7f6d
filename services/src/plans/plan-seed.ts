import type { Queryable } from '../storage/database.js';
import { createPlan, findPlan, type Plan } from './plan-catalog.js';
import type { PlanCreateInput } from './plan-schemas.js';

/** One gigabyte in bytes (SI, as bandwidth is billed). */
const gigabyte = 1_000_000_000;

/**
 * The example plans `tollgate plans seed` creates (docs/plans.md, "Seed"): starting points an
 * operator edits, priced in USD, EUR and GBP. Pro is the plan issue 5 bills in its worked example:
 * 100,000 calls included, then 0.0005 per call, 0.0003 beyond 1,000,000 overage calls.
 */
export const examplePlans: readonly PlanCreateInput[] = [
  {
    slug: 'basic',
    name: 'Basic',
    description: 'For side projects: a small monthly quota, capped (no overage).',
    trial_days: 14,
    prices: [
      { currency: 'USD', interval: 'month', amount: '19.00' },
      { currency: 'EUR', interval: 'month', amount: '18.00' },
      { currency: 'GBP', interval: 'month', amount: '16.00' },
    ],
    annual_discount_percent: '15',
    included: { calls: 10_000, bandwidth: 1 * gigabyte },
    overage_allowed: false,
    rate_limits: { per_second: 5, per_minute: null, per_hour: 2_000, per_day: null },
    entitlements: { support: 'community', sso: false, max_team_members: 3 },
  },
  {
    slug: 'pro',
    name: 'Pro',
    description: 'For production APIs: 100,000 calls a month included, then billed per call.',
    trial_days: 14,
    prices: [
      { currency: 'USD', interval: 'month', amount: '49.00' },
      { currency: 'EUR', interval: 'month', amount: '45.00' },
      { currency: 'GBP', interval: 'month', amount: '39.00' },
    ],
    annual_discount_percent: '15',
    included: { calls: 100_000, bandwidth: 10 * gigabyte },
    overage_allowed: true,
    overage: {
      calls: {
        USD: {
          model: 'graduated',
          tiers: [
            { up_to: 1_000_000, unit_price: '0.0005' },
            { up_to: null, unit_price: '0.0003' },
          ],
        },
        EUR: {
          model: 'graduated',
          tiers: [
            { up_to: 1_000_000, unit_price: '0.00046' },
            { up_to: null, unit_price: '0.00028' },
          ],
        },
        GBP: {
          model: 'graduated',
          tiers: [
            { up_to: 1_000_000, unit_price: '0.0004' },
            { up_to: null, unit_price: '0.00024' },
          ],
        },
      },
      bandwidth: {
        USD: { model: 'package', package_size: gigabyte, package_price: '0.10' },
        EUR: { model: 'package', package_size: gigabyte, package_price: '0.09' },
        GBP: { model: 'package', package_size: gigabyte, package_price: '0.08' },
      },
    },
    rate_limits: { per_second: 50, per_minute: null, per_hour: 100_000, per_day: null },
    entitlements: { support: 'email', sso: false, max_team_members: 10 },
  },
  {
    slug: 'enterprise',
    name: 'Enterprise',
    description: 'For high volume: volume-tiered calls, storage, single sign-on and an SLA.',
    trial_days: 30,
    prices: [
      { currency: 'USD', interval: 'month', amount: '499.00' },
      { currency: 'USD', interval: 'year', amount: '4990.00' },
      { currency: 'EUR', interval: 'month', amount: '459.00' },
      { currency: 'EUR', interval: 'year', amount: '4590.00' },
      { currency: 'GBP', interval: 'month', amount: '399.00' },
      { currency: 'GBP', interval: 'year', amount: '3990.00' },
    ],
    included: { calls: 5_000_000, bandwidth: 1_000 * gigabyte, storage: 100 * gigabyte },
    overage_allowed: true,
    overage: {
      calls: {
        USD: {
          model: 'volume',
          tiers: [
            { up_to: 10_000_000, unit_price: '0.0002' },
            { up_to: null, unit_price: '0.0001' },
          ],
        },
        EUR: {
          model: 'volume',
          tiers: [
            { up_to: 10_000_000, unit_price: '0.00018' },
            { up_to: null, unit_price: '0.00009' },
          ],
        },
        GBP: {
          model: 'volume',
          tiers: [
            { up_to: 10_000_000, unit_price: '0.00016' },
            { up_to: null, unit_price: '0.00008' },
          ],
        },
      },
      bandwidth: {
        USD: { model: 'package', package_size: gigabyte, package_price: '0.05' },
        EUR: { model: 'package', package_size: gigabyte, package_price: '0.05' },
        GBP: { model: 'package', package_size: gigabyte, package_price: '0.04' },
      },
      storage: {
        USD: { model: 'package', package_size: gigabyte, package_price: '0.02' },
        EUR: { model: 'package', package_size: gigabyte, package_price: '0.02' },
        GBP: { model: 'package', package_size: gigabyte, package_price: '0.02' },
      },
    },
    rate_limits: { per_second: 500, per_minute: null, per_hour: null, per_day: null },
    entitlements: { support: 'dedicated', sso: true, sla: '99.95', max_team_members: 1_000 },
  },
];

/**
 * Creates the example plans that do not exist yet (by slug, archived ones included), leaving alone
 * those that do: an operator may have edited them. Seeding twice changes nothing. Call inside a
 * transaction.
 */
export async function seedPlans(
  tx: Queryable,
  options: { createdByUserId?: string | null } = {},
): Promise<{ created: Plan[]; existing: Plan[] }> {
  const created: Plan[] = [];
  const existing: Plan[] = [];
  for (const example of examplePlans) {
    const found = await findPlan(tx, example.slug);
    if (found) existing.push(found);
    else created.push(await createPlan(tx, example, options));
  }
  return { created, existing };
}
