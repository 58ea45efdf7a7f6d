import { expectedDatabaseDriver, type StripeServer } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApiWithStripe, startApiWithStripe } from './support/start-api.js';

let api: RunningApiWithStripe;
let env: NodeJS.ProcessEnv;
let stripe: StripeServer;

// The first operator (the CLI's session) creates the pack and the team, of which it is the admin.
beforeAll(async () => {
  api = await startApiWithStripe('credit-purchases');
  ({ env, stripe } = api);
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

afterAll(() => api?.dispose());

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
