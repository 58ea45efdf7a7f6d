import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

// The first operator (the CLI's session) creates the packs and the teams, of which it is the admin.
beforeAll(async () => {
  api = await startApi('credits-purchases');
  ({ env } = api);
  for (const args of [
    ['--slug', 'fifty', '--name', 'Fifty', '--price', 'USD=45', '--amount', '50', '--currency', 'USD'],
    ['--slug', 'million', '--name', 'Million', '--price', 'USD=9.99', '--units', '1000000', '--metric', 'calls'],
  ]) {
    const pack = await runCli(['credits', 'packs', 'create', ...args], env);
    expect(pack.code, pack.stderr).toBe(0);
  }
  expect((await runCli(['teams', 'create', 'Buyer', '--slug', 'buyer'], env)).code).toBe(0);
  expect((await runCli(['teams', 'create', 'Idle', '--slug', 'idle'], env)).code).toBe(0);
});

afterAll(() => api?.dispose());

describe(`tollgate credits purchases (${expectedDatabaseDriver}, manual provider)`, () => {
  it('lists the team purchases newest first as a table and as JSON', async () => {
    const none = await runCli(['credits', 'purchases', '--team', 'idle'], env);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('No credit pack purchases yet');

    for (const pack of ['fifty', 'million']) {
      const bought = await runCli(['credits', 'buy', pack, '--team', 'buyer', '--json'], env);
      expect(bought.code, bought.stderr).toBe(0);
    }
    const table = await runCli(['credits', 'purchases', '--team', 'buyer'], env);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trimEnd().split('\n');
    expect(rows[0]).toBe('when\tpack\tamount\tgrants\tstatus\treference');
    expect(rows).toHaveLength(3);
    expect(rows[1]).toMatch(/^\d{4}-\d\d-\d\dT[^\t]+\tmillion\t9\.99 USD\t1,000,000 calls \(once paid\)\tpending\t-$/);
    expect(rows[2]).toContain('\tfifty\t45.00 USD\t$50.00 (once paid)\tpending\t');

    const json = await runCli(['credits', 'purchases', '--team', 'buyer', '--json'], env);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    const body = JSON.parse(json.stdout);
    expect(body.purchases.map((purchase: { pack: string }) => purchase.pack)).toEqual(['million', 'fifty']);
    expect(body.purchases[1]).toMatchObject({
      amount_minor: '4500',
      status: 'pending',
      granted: false,
      grant: { currency: 'USD', amount_minor: '5000' },
    });
  });

  it('names the team it cannot find', async () => {
    const missing = await runCli(['credits', 'purchases', '--team', 'no-such-team'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not_found');
  });
});
