import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

// A fresh installation signs the CLI in as its first operator (admin@localhost), who may manage
// credit packs and grant credits; `teams create` makes the operator the admin of a team too.
beforeAll(async () => {
  api = await startApi('credits');
  ({ env } = api);
  expect((await runCli(['teams', 'create', 'Credit CLI', '--slug', 'credit-cli'], env)).code).toBe(0);
});

afterAll(() => api?.dispose());

describe(`tollgate credits (${expectedDatabaseDriver})`, () => {
  it('creates, lists and archives packs', async () => {
    const created = await runCli(
      [
        'credits',
        'packs',
        'create',
        '--slug',
        'million-calls',
        '--name',
        'A million calls',
        '--price',
        'USD=49',
        '--price',
        'EUR=45.50',
        '--units',
        '1000000',
        '--metric',
        'calls',
        '--validity-days',
        '365',
      ],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe('Created the credit pack A million calls (million-calls): 1,000,000 calls.\n');

    const listed = await runCli(['credits', 'packs', 'list'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.trimEnd().split('\n')).toEqual([
      'slug\tname\tprices\tgrants\tvalid\tstatus',
      'million-calls\tA million calls\tEUR 45.50,USD 49.00\t1,000,000 calls\t365d\tactive',
    ]);

    const archived = await runCli(['credits', 'packs', 'archive', 'million-calls'], env);
    expect(archived.code).toBe(2); // no terminal and no --yes
    expect((await runCli(['credits', 'packs', 'archive', 'million-calls', '--yes'], env)).code).toBe(0);
    const json = JSON.parse((await runCli(['credits', 'packs', 'list', '--archived', '--json'], env)).stdout);
    expect(json.packs[0]).toMatchObject({ slug: 'million-calls', archived_at: expect.any(String) });
  });

  it('refuses a price with more decimals than the currency, and an unknown pack', async () => {
    const refused = await runCli(
      ['credits', 'packs', 'create', '--slug', 'bad', '--name', 'Bad', '--price', 'USD=1.999', '--amount', '2'],
      env,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^validation_failed: prices\.0\.amount: "1\.999" has more than 2 decimals/m);
    const unknown = await runCli(['credits', 'packs', 'archive', 'no-such', '--yes', '--json'], env);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout).error.code).toBe('not_found');
    expect(JSON.parse((await runCli(['credits', 'packs', 'list', '--json'], env)).stdout).packs).toEqual([]);
  });

  it('grants credits, shows the exact balance, and sets the low-balance alert', async () => {
    const granted = await runCli(
      ['credits', 'grant', '--amount', '25.50', '--reason', 'outage credit', '--idempotency-key', 'outage-1'],
      env,
    );
    expect(granted.code, granted.stderr).toBe(0);
    expect(granted.stdout).toBe('Granted 25.50 USD; the balance is now $25.50.\n');
    // The same grant again changes nothing.
    const again = await runCli(
      ['credits', 'grant', '--amount', '25.50', '--reason', 'outage credit', '--idempotency-key', 'outage-1', '--json'],
      env,
    );
    expect(JSON.parse(again.stdout).balance.balance).toBe('25.50');
    const units = await runCli(
      ['credits', 'grant', '--units', '100000', '--metric', 'calls', '--reason', 'trial', '--team', 'credit-cli'],
      env,
    );
    expect(units.code, units.stderr).toBe(0);

    const balance = await runCli(['credits', 'balance', '--json'], env);
    expect(balance.code, balance.stderr).toBe(0);
    const body = JSON.parse(balance.stdout);
    expect(
      body.balances.map((b: { currency: string | null; metric: string | null; balance: string }) => [
        b.currency ?? b.metric,
        b.balance,
      ]),
    ).toEqual([
      ['USD', '25.50'],
      ['calls', '100000'],
    ]);
    expect(body.entries).toHaveLength(2);

    const table = await runCli(['credits', 'balance', '--entries', '0'], env);
    expect(table.stdout.trimEnd().split('\n')).toEqual([
      'pool\tbalance\talert below\tnext expiry',
      'USD\t25.50\t\t',
      'calls\t100000', // trimEnd takes the empty last cells
    ]);

    const alert = await runCli(['credits', 'alert', '--below', '30'], env);
    expect(alert.code, alert.stderr).toBe(0);
    expect(alert.stdout).toBe('Alert when USD credit falls below 30.00 (now $25.50, already below).\n');
    const off = await runCli(['credits', 'alert', '--off'], env);
    expect(off.stdout).toBe('No low-balance alert for USD any more.\n');
  });

  it('refuses bad amounts with a clear error and exit code, and grants nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--amount', '-5'], /amount: "-5" must not be negative/],
      [['--amount', '0.001'], /has more than 2 decimals/],
      [['--amount', '5', '--currency', 'JPY'], /currency/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['credits', 'grant', ...args, '--reason', 'x'], env);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr).toMatch(/^validation_failed: /m);
      expect(result.stderr).toMatch(message);
    }
    expect((await runCli(['credits', 'grant', '--reason', 'x'], env)).code).toBe(2);
    expect((await runCli(['credits', 'alert'], env)).code).toBe(2);
    const body = JSON.parse((await runCli(['credits', 'balance', '--json'], env)).stdout);
    expect(body.entries).toHaveLength(2);
  });
});
