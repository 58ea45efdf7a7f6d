import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

// A fresh installation signs the CLI in as its first operator (admin@localhost), who may manage plans.
beforeAll(async () => {
  api = await startApi('plans-migrate');
  ({ env } = api);
});

afterAll(() => api?.dispose());

const ok = async (args: string[]) => {
  const result = await runCli(args, env);
  expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result;
};

describe(`tollgate plans migrate (${expectedDatabaseDriver})`, () => {
  it('shows a dry run, moves subscribers now with proration, lists the skipped ones, and a rerun moves nothing', async () => {
    await ok([
      'plans',
      'create',
      '--slug',
      'lift',
      '--name',
      'Lift',
      '--price',
      'USD:month:10',
      '--price',
      'EUR:month:9',
      '--trial-days',
      '0',
    ]);
    for (const slug of ['dollar', 'euro']) await ok(['teams', 'create', slug, '--slug', slug]);
    const dollar = JSON.parse((await ok(['subscribe', 'lift', '--team', 'dollar', '--json'])).stdout);
    const euro = JSON.parse((await ok(['subscribe', 'lift', '--team', 'euro', '--currency', 'EUR', '--json'])).stdout);
    // Version 2 costs more and has no EUR price.
    await ok(['plans', 'update', 'lift', '--price', 'USD:month:12']);

    const dry = await ok(['plans', 'migrate', 'lift', '--dry-run']);
    const lines = dry.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('subscription\tteam\tfrom\tto\tat\tprorated');
    expect(lines[1]).toBe(`${dollar.id}\t${dollar.team_id}\t1\t2\t${dollar.current_period_end}\t`);
    expect(lines[3]).toBe('skipped\tteam\tfrom\treason\tmessage');
    expect(lines[4]).toBe(
      `${euro.id}\t${euro.team_id}\t1\tprice_not_offered\tversion 2 of lift has no monthly price in EUR`,
    );
    expect(lines.at(-1)).toBe(
      'Dry run: 1 subscription(s) would move from lift version 1 to version 2 at their period end; 1 skipped. Nothing was written.',
    );
    const unchanged = JSON.parse((await ok(['subscription', 'show', '--team', 'dollar', '--json'])).stdout);
    expect(unchanged).toMatchObject({ plan_version: 1, pending_change: null });

    const run = await ok(['plans', 'migrate', 'lift', '--now', '--json']);
    const answer = JSON.parse(run.stdout);
    expect(answer).toMatchObject({
      plan: 'lift',
      from_versions: [1],
      to_version: 2,
      at: 'now',
      dry_run: false,
      migrated: [
        { subscription_id: dollar.id, team_id: dollar.team_id, from_version: 1, to_version: 2, currency: 'USD' },
      ],
      skipped: [{ subscription_id: euro.id, reason: 'price_not_offered' }],
    });
    // Moved at the start of its period: about a whole period of the 2.00 difference.
    const { proration } = answer.migrated[0];
    expect(proration.net_minor).toBe(proration.charge_minor - proration.credit_minor);
    expect(proration.net_minor).toBeGreaterThan(190);
    const moved = JSON.parse((await ok(['subscription', 'show', '--team', 'dollar', '--json'])).stdout);
    expect(moved).toMatchObject({ plan: 'lift', plan_version: 2, amount_minor: 1200 });

    const again = await ok(['plans', 'migrate', 'lift', '--now']);
    expect(again.stdout.split('\n')[0]).toBe('skipped\tteam\tfrom\treason\tmessage');
    expect(again.stdout.trimEnd().split('\n').at(-1)).toBe(
      '0 subscription(s) moved from lift version 1 to version 2 now; 1 skipped.',
    );
  });

  it('refuses an unknown plan and versions that do not move forward with exit 1, a malformed version with exit 2', async () => {
    const unknown = await runCli(['plans', 'migrate', 'no-such-plan'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^not_found: no plan no-such-plan/);
    const backwards = await runCli(
      ['plans', 'migrate', 'lift', '--from-version', '2', '--to-version', '1', '--json'],
      env,
    );
    expect(backwards.code).toBe(1);
    expect(JSON.parse(backwards.stdout).error.code).toBe('validation_failed');
    const zero = await runCli(['plans', 'migrate', 'lift', '--to-version', '0'], env);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/^usage_error: --to-version must be a version number such as 2/);
  });
});
