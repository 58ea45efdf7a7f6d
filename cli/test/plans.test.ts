import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let api: RunningApi;

// A fresh installation signs the CLI in as its first operator (admin@localhost), who may manage plans.
beforeAll(async () => {
  api = await startApi('plans');
  ({ env, dir } = api);
});

afterAll(() => api?.dispose());

const slugsOf = async (args: string[] = []) =>
  JSON.parse((await runCli(['plans', 'list', '--json', ...args], env)).stdout).plans.map(
    (plan: { slug: string }) => plan.slug,
  );

describe(`tollgate plans (${expectedDatabaseDriver})`, () => {
  it('seeds Basic, Pro and Enterprise once, lists and shows them', async () => {
    const seeded = await runCli(['plans', 'seed'], env);
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(seeded.stdout).toBe('Created basic, pro, enterprise.\n');
    const again = await runCli(['plans', 'seed', '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: [], existing: ['basic', 'pro', 'enterprise'] });

    // Not a terminal: tab-separated, a header first.
    const table = await runCli(['plans', 'list'], env);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('slug\tversion\tname\tmonthly\tcalls\toverage\ttrial\tstatus\tsubscribers');
    expect(lines).toContain('pro\t1\tPro\tEUR 45.00,GBP 39.00,USD 49.00\t100000\tyes\t14d\tactive\t0');
    expect(lines).toContain('free\t1\tFree\t\t10000\tno\t14d\tdefault\t0');

    const shown = await runCli(['plans', 'show', 'pro'], env);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^prices\tEUR 45\.00\/month, EUR 459\.00\/year \(derived\), GBP 39\.00\/month/m);
    expect(shown.stdout).toMatch(/^overage calls USD\tgraduated: 0\.0005 up to 1000000, then 0\.0003$/m);
    expect(shown.stdout).toMatch(/^included\tcalls=100000, bandwidth=10000000000$/m);
    const json = JSON.parse((await runCli(['plans', 'show', 'pro', '--version', '1', '--json'], env)).stdout);
    expect(json).toMatchObject({ slug: 'pro', version: 1, subscribers: 0 });
  });

  it('creates a plan from price, quota, overage, entitlement and rate-limit flags', async () => {
    const overageFile = join(dir, 'plan-overage.json');
    await writeFile(
      overageFile,
      JSON.stringify({
        calls: {
          USD: {
            model: 'volume',
            tiers: [
              { up_to: 1000, unit_price: '0.001' },
              { up_to: null, unit_price: '0.0005' },
            ],
          },
        },
      }),
    );
    const created = await runCli(
      [
        'plans',
        'create',
        '--name',
        'Team Plan',
        '--price',
        'USD:month:49.00',
        '--price',
        'eur:month:45',
        '--price',
        'EUR:year:450',
        '--annual-discount',
        '15',
        '--trial-days',
        '7',
        '--included',
        'calls=100_000',
        '--included',
        'bandwidth=10000000000',
        '--overage-file',
        overageFile,
        '--overage',
        'calls:EUR=0.0004',
        '--overage',
        'bandwidth:USD={"model":"package","package_size":1000000000,"package_price":"0.10"}',
        '--overage',
        'bandwidth:EUR=0.0000000001',
        '--overage-allowed',
        '--entitlement',
        'sso=true',
        '--entitlement',
        'max_seats=10',
        '--entitlement',
        'support=email',
        '--rate-per-second',
        '20',
        '--rate-per-hour',
        'none',
        '--json',
      ],
      env,
    );
    expect(created.code, created.stderr + created.stdout).toBe(0);
    const plan = JSON.parse(created.stdout);
    expect(plan).toMatchObject({
      slug: 'team-plan',
      version: 1,
      trial_days: 7,
      annual_discount_percent: '15',
      included: { calls: 100_000, bandwidth: 10_000_000_000 },
      overage_allowed: true,
      overage: {
        calls: {
          USD: { model: 'volume' },
          EUR: { model: 'per_unit', unit_price: '0.0004' },
        },
        bandwidth: { USD: { model: 'package', package_size: 1_000_000_000, package_price: '0.10' } },
      },
      entitlements: { sso: true, max_seats: 10, support: 'email' },
      rate_limits: { per_second: 20, per_minute: null, per_hour: null, per_day: null },
    });
    expect(
      plan.prices.map(
        (price: { currency: string; interval: string; amount: string; source: string }) =>
          `${price.currency}:${price.interval}:${price.amount}:${price.source}`,
      ),
    ).toEqual([
      'EUR:month:45.00:explicit',
      'EUR:year:450.00:explicit',
      'USD:month:49.00:explicit',
      'USD:year:499.80:derived',
    ]);

    const human = await runCli(['plans', 'create', '--name', 'Hobby', '--price', 'USD:month:5'], env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toBe('Created the plan Hobby (hobby), version 1.\n');
  });

  it('updates a plan in place while nobody subscribes, and says so', async () => {
    const updated = await runCli(
      ['plans', 'update', 'hobby', '--name', 'Hobby Plus', '--rate-per-second', '5', '--included', 'calls=5000'],
      env,
    );
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toBe('Updated hobby version 1 in place (changed: name, included, rate_limits).\n');
    const same = await runCli(['plans', 'update', 'hobby', '--name', 'Hobby Plus', '--json'], env);
    expect(JSON.parse(same.stdout)).toMatchObject({ new_version: false, changed: [], plan: { version: 1 } });
  });

  it('prints an error as code: message and exits 1, with nothing written', async () => {
    const before = await slugsOf(['--archived']);
    const negative = await runCli(['plans', 'create', '--name', 'Bad', '--price', 'USD:month:-5'], env);
    expect(negative.code).toBe(1);
    expect(negative.stderr).toMatch(/^validation_failed: prices\.0\.amount: a decimal amount/);
    const currency = await runCli(['plans', 'create', '--name', 'Bad', '--price', 'XYZ:month:5', '--json'], env);
    expect(currency.code).toBe(1);
    expect(JSON.parse(currency.stdout).error).toMatchObject({ code: 'validation_failed' });
    expect(JSON.parse(currency.stdout).error.message).toMatch(/^prices\.0\.currency: /);
    const tiers = await runCli(
      [
        'plans',
        'create',
        '--name',
        'Bad',
        '--included',
        'calls=0',
        '--overage',
        'calls:USD={"model":"graduated","tiers":[{"up_to":100,"unit_price":"1"},{"up_to":50,"unit_price":"1"},{"up_to":null,"unit_price":"1"}]}',
      ],
      env,
    );
    expect(tiers.code).toBe(1);
    expect(tiers.stderr).toMatch(/^validation_failed: overage\.calls\.USD\.tiers\.1\.up_to: tiers go up/);
    const metric = await runCli(['plans', 'update', 'hobby', '--included', 'Big-Metric=5'], env);
    expect(metric.code).toBe(1);
    expect(metric.stderr).toMatch(/^validation_failed: included\.Big-Metric: "Big-Metric" is not a metric name/);
    const taken = await runCli(['plans', 'create', '--name', 'Pro'], env);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^slug_taken: a plan with the slug "pro" exists\nhint: /);
    const missing = await runCli(['plans', 'show', 'no-such-plan'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^not_found: no plan no-such-plan\nhint: tollgate plans list shows them/);
    expect(await slugsOf(['--archived'])).toEqual(before);
  });

  it('refuses usage errors with exit 2 before any call', async () => {
    // Nothing listens on this URL: these are refused before any call is tried.
    const offline = { ...env, TOLLGATE_API_URL: 'http://127.0.0.1:9' };
    const cases: [string[], RegExp][] = [
      [
        ['plans', 'create', '--name', 'X', '--price', 'USD:49'],
        /^usage_error: --price must be CURRENCY:INTERVAL:AMOUNT/,
      ],
      [
        ['plans', 'create', '--name', 'X', '--price', 'USD:weekly:49'],
        /^usage_error: --price interval must be month or year/,
      ],
      [['plans', 'create', '--name', 'X', '--included', 'calls=lots'], /^usage_error: --included needs a whole number/],
      [
        ['plans', 'create', '--name', 'X', '--overage', 'calls:USD={model:1}'],
        /^usage_error: --overage is not valid JSON/,
      ],
      [
        ['plans', 'create', '--name', 'X', '--overage', 'calls=0.1'],
        /^usage_error: --overage must be METRIC:CURRENCY=PRICE/,
      ],
      [
        ['plans', 'create', '--name', 'X', '--rate-per-second', 'fast'],
        /^usage_error: --rate-per-second must be a whole number/,
      ],
      [
        ['plans', 'create', '--name', 'X', '--overage-file', join(dir, 'missing.json')],
        /^usage_error: --overage-file cannot be read/,
      ],
      [['plans', 'update', 'hobby'], /^usage_error: nothing to change/],
      [['plans', 'archive', 'hobby'], /^usage_error: no terminal to confirm archiving the plan\nhint: pass --yes/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, offline);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('archives a plan: gone from the list, kept with --archived, refuses changes', async () => {
    const archived = await runCli(['plans', 'archive', 'hobby', '--yes'], env);
    expect(archived.code, archived.stderr).toBe(0);
    expect(archived.stdout).toBe('Archived hobby: no new subscriptions.\n');
    expect(await slugsOf()).not.toContain('hobby');
    expect(await slugsOf(['--archived'])).toContain('hobby');
    const change = await runCli(['plans', 'update', 'hobby', '--trial-days', '3'], env);
    expect(change.code).toBe(1);
    expect(change.stderr).toMatch(
      /^plan_archived: the plan hobby is archived and cannot change\nhint: an archived plan cannot change/,
    );
    const free = await runCli(['plans', 'archive', 'free', '--yes', '--json'], env);
    expect(free.code).toBe(1);
    expect(JSON.parse(free.stdout).error.code).toBe('plan_is_default');
  });
});
