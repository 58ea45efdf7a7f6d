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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let running: StartedProcess;
let stripe: StripeServer;
let disposeDatabase: () => Promise<void>;

// The first operator (the CLI's session) creates the pack and the team, of which it is the admin.
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tollgate-credit-purchases-cli-'));
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
  const pack = await runCli(
    [
      'credits',
      'packs',
      'create',
      '--slug',
      'fifty',
      '--name',
      'Fifty',
      '--price',
      'USD=45',
      '--amount',
      '50',
      '--currency',
      'USD',
    ],
    env,
  );
  expect(pack.code, pack.stderr).toBe(0);
  expect((await runCli(['teams', 'create', 'Buyer', '--slug', 'buyer'], env)).code).toBe(0);
});

afterAll(async () => {
  await stop(running);
  await stripe?.close();
  await disposeDatabase();
  await rm(dir, { recursive: true, force: true });
});

describe(`tollgate credits buy through Stripe (${expectedDatabaseDriver})`, () => {
  it('prints the Checkout URL without a terminal and opens nothing', async () => {
    const bought = await runCli(['credits', 'buy', 'fifty', '--team', 'buyer'], env);
    expect(bought.code, bought.stderr).toBe(0);
    const session = stripe.objects('checkout.session').at(-1) as unknown as {
      url: string;
      mode: string;
      amount_total: number;
    };
    expect(bought.stdout).toBe(`${session.url}\n`);
    expect(session).toMatchObject({ mode: 'payment', amount_total: 4500 });
    expect(bought.stderr).toContain('Open this URL to pay');

    const json = await runCli(['credits', 'buy', 'fifty', '--team', 'buyer', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      pack: 'fifty',
      status: 'pending',
      provider: 'stripe',
      amount: '45.00',
    });
  });

  it('exits 1 with the code for an unknown pack', async () => {
    const missing = await runCli(['credits', 'buy', 'no-such-pack', '--team', 'buyer'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^not_found: no credit pack no-such-pack/);
  });
});
