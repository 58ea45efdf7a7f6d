import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('invoices-void');
  ({ env } = api);
  const created = await runCli(
    ['plans', 'create', '--slug', 'voidable', '--name', 'Voidable', '--price', 'USD:month:12.34', '--trial-days', '0'],
    env,
  );
  expect(created.code, created.stderr).toBe(0);
  expect((await runCli(['teams', 'create', 'Voided', '--slug', 'voided'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'voided';
});

afterAll(() => api?.dispose());

describe(`tollgate invoices void (${expectedDatabaseDriver}, manual provider)`, () => {
  it('voids an open invoice with a reason, once; bad input is refused with its code', async () => {
    const subscribed = await runCli(['subscribe', 'voidable', '--json'], env);
    expect(subscribed.code, subscribed.stderr).toBe(0);
    const end = JSON.parse(subscribed.stdout).current_period_end as string;
    const now = new Date(Date.parse(end) + 60_000).toISOString();
    expect((await runCli(['billing', 'close-period', '--now', now], env)).code).toBe(0);
    const [invoice] = JSON.parse((await runCli(['invoices', 'list', '--json'], env)).stdout).invoices;
    expect(invoice.status).toBe('open');

    const tooLong = await runCli(['invoices', 'void', invoice.id, '--reason', 'x'.repeat(501)], env);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain('validation_failed');
    const missing = await runCli(['invoices', 'void', '00000000-0000-4000-8000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not_found');
    expect(JSON.parse((await runCli(['invoices', 'show', invoice.id, '--json'], env)).stdout).status).toBe('open');

    const voided = await runCli(['invoices', 'void', invoice.id, '--reason', 'billed twice'], env);
    expect(voided.code, voided.stderr).toBe(0);
    expect(voided.stdout).toContain(`Invoice ${invoice.number} is void`);
    expect(voided.stdout).toContain('billed twice');

    // Again: unchanged, the first reason kept.
    const again = await runCli(['invoices', 'void', invoice.id, '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ id: invoice.id, status: 'void', void_reason: 'billed twice' });
    const listed = await runCli(['invoices', 'list'], env);
    expect(listed.stdout).toContain('\tvoid\t');
  });

  it('documents itself in --help', async () => {
    const help = await runCli(['invoices', 'void', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--reason');
    expect(help.stdout).toContain('credit note');
  });
});
