import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestDatabaseConfig,
  expectedDatabaseDriver,
  type StripeServer,
  startStripeServer,
} from '@tollgate/services/testing';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let running: StartedProcess;
let stripe: StripeServer;
let disposeDatabase: () => Promise<void>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tollgate-billing-metrics-cli-'));
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  stripe = await startStripeServer({ webhookSecret });
  const database = await createTestDatabaseConfig();
  disposeDatabase = database.dispose;
  env = cliEnv({
    TOLLGATE_CONFIG_DIR: join(dir, 'config'),
    TOLLGATE_MAIL_DIR: join(dir, 'mail'),
    TOLLGATE_API_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_DATA_DIR: database.value.driver === 'pglite' ? database.value.dataDir : join(dir, 'data'),
    DATABASE_URL: database.value.driver === 'postgres' ? database.value.url : undefined,
    STRIPE_SECRET_KEY: stripe.apiKey,
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    STRIPE_API_BASE: stripe.url,
  });
  running = spawnStart(['--only', 'api'], env);
  await running.ready;
});

afterAll(async () => {
  await stop(running);
  await stripe?.close();
  await disposeDatabase();
  await rm(dir, { recursive: true, force: true });
});

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
