import { expectedDatabaseDriver, type StripeServer } from '@tollgate/services/testing';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApiWithStripe, startApiWithStripe } from './support/start-api.js';

let api: RunningApiWithStripe;
let env: NodeJS.ProcessEnv;
let stripe: StripeServer;

beforeAll(async () => {
  api = await startApiWithStripe('billing-metrics');
  ({ env, stripe } = api);
});

afterAll(() => api?.dispose());

describe(`tollgate billing metrics (${expectedDatabaseDriver})`, () => {
  it('prints a day per row, the last 30 days by default, today from the live subscriptions', async () => {
    const json = await runCli(['billing', 'metrics', '--json'], env);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout);
    expect(body.days).toHaveLength(30);
    expect(body.days.at(-1)).toMatchObject({
      day: new Date().toISOString().slice(0, 10),
      recorded: true,
      mrr_minor: 0,
      subscriptions: { trialing: 0, active: 0, past_due: 0, unpaid: 0 },
    });

    const table = await runCli(['billing', 'metrics', '--from', '2026-01-01', '--to', '2026-01-02'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toBe(
      [
        'day\tmrr\tarr\tactive\ttrialing\ttrial→paid\tlogo churn\trevenue churn\tarpu',
        '2026-01-01\t-\t-\t-\t-\t-\t-\t-\t-',
        '2026-01-02\t-\t-\t-\t-\t-\t-\t-\t-',
        '',
      ].join('\n'),
    );
  });

  it('refuses a range that ends before it starts, and a malformed day, with validation_failed', async () => {
    const backwards = await runCli(['billing', 'metrics', '--from', '2026-01-05', '--to', '2026-01-01'], env);
    expect(backwards.code).toBe(1);
    expect(backwards.stderr).toMatch(/^validation_failed: from: 2026-01-05 is after to/);
    const malformed = await runCli(['billing', 'metrics', '--from', 'last-week', '--json'], env);
    expect(malformed.code).toBe(1);
    expect(JSON.parse(malformed.stdout).error.code).toBe('validation_failed');
  });
});

describe(`tollgate billing reconcile (${expectedDatabaseDriver})`, () => {
  it('exits 0 when in sync and 1 listing the differences otherwise', async () => {
    const agree = await runCli(['billing', 'reconcile', '--json'], env);
    expect(agree.code).toBe(0);
    expect(JSON.parse(agree.stdout)).toMatchObject({ configured: true, differences: [] });

    const sdk = new Stripe(stripe.apiKey, stripe.stripeConfig());
    const customer = await sdk.customers.create({ email: 'stranger@example.com' });
    const price = await sdk.prices.create({
      currency: 'usd',
      unit_amount: 1500,
      recurring: { interval: 'month' },
      product_data: { name: 'By hand' },
    });
    const stranger = await sdk.subscriptions.create({
      customer: customer.id,
      items: [{ price: price.id }],
      collection_method: 'send_invoice',
      days_until_due: 30,
    });
    const differ = await runCli(['billing', 'reconcile'], env);
    expect(differ.code).toBe(1);
    expect(differ.stdout).toContain(`subscription\tmissing_at_home\t-\t${stranger.id}\t-\tactive`);
    expect(differ.stderr).toContain('1 difference with Stripe.');
  });
});
