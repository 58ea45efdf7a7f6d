import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('invoices');
  ({ env, dir } = api);
  const created = await runCli(
    ['plans', 'create', '--slug', 'invoiced', '--name', 'Invoiced', '--price', 'USD:month:12.34', '--trial-days', '0'],
    env,
  );
  expect(created.code, created.stderr).toBe(0);
  expect((await runCli(['teams', 'create', 'Billed', '--slug', 'billed'], env)).code).toBe(0);
  env.TOLLGATE_TEAM = 'billed';
});

afterAll(() => api?.dispose());

describe(`tollgate billing close-period and invoices (${expectedDatabaseDriver}, manual provider)`, () => {
  it('closes the ended month, lists, shows and downloads the invoice as a PDF', async () => {
    const subscribed = await runCli(['subscribe', 'invoiced', '--json'], env);
    expect(subscribed.code, subscribed.stderr).toBe(0);
    const end = JSON.parse(subscribed.stdout).current_period_end as string;

    const empty = await runCli(['invoices', 'list'], env);
    expect(empty.code).toBe(0);
    expect(empty.stderr).toContain('No invoices yet');

    const bad = await runCli(['billing', 'close-period', '--now', 'yesterday'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('validation_failed');

    const now = new Date(Date.parse(end) + 60_000).toISOString();
    const closed = await runCli(['billing', 'close-period', '--now', now, '--json'], env);
    expect(closed.code, closed.stderr).toBe(0);
    expect(JSON.parse(closed.stdout).invoiced).toBe(1);
    // A rerun invoices nothing twice.
    expect(JSON.parse((await runCli(['billing', 'close-period', '--now', now, '--json'], env)).stdout).invoiced).toBe(
      0,
    );

    const listed = await runCli(['invoices', 'list', '--json'], env);
    const [invoice] = JSON.parse(listed.stdout).invoices;
    expect(invoice).toMatchObject({ status: 'open', total: { minor: '1234', formatted: '$12.34' } });
    const table = await runCli(['invoices', 'list'], env);
    expect(table.stdout).toContain(`${invoice.number}\t`);
    expect(table.stdout).toContain('\topen\t$12.34\t');

    const shown = await runCli(['invoices', 'show', invoice.id], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('total\t$12.34');
    expect(shown.stdout).toContain('tax\t$0.00');

    const out = join(dir, 'invoice.pdf');
    const pdf = await runCli(['invoices', 'pdf', invoice.id, '--out', out], env);
    expect(pdf.code, pdf.stderr).toBe(0);
    const bytes = (await readFile(out)).toString('latin1');
    expect(bytes.startsWith('%PDF-1.4')).toBe(true);
    expect(bytes).toContain('($12.34) Tj');

    const missing = await runCli(['invoices', 'show', '00000000-0000-4000-8000-000000000000'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('not_found');
    const missingPdf = await runCli(['invoices', 'pdf', 'nope', '--out', out], env);
    expect(missingPdf.code).toBe(1);
    expect(missingPdf.stderr).toContain('not_found');
  });

  it('shows when an invoice is due, marks it paid and corrects it with a credit note', async () => {
    const [invoice] = JSON.parse((await runCli(['invoices', 'list', '--json'], env)).stdout).invoices;
    const shown = JSON.parse((await runCli(['invoices', 'show', invoice.id, '--json'], env)).stdout);
    // Finalized by the close above: due TOLLGATE_BILLING_PAYMENT_TERMS_DAYS (14) later.
    expect(new Date(shown.due_at).getTime() - new Date(shown.finalized_at).getTime()).toBe(14 * 86_400_000);
    expect((await runCli(['invoices', 'show', invoice.id], env)).stdout).toContain(`due\t${shown.due_at}`);

    const paid = await runCli(['invoices', 'mark-paid', invoice.id], env);
    expect(paid.code, paid.stderr).toBe(0);
    expect(paid.stdout).toMatch(new RegExp(`^Invoice ${invoice.number} is paid \\(\\$12\\.34, `));
    const again = await runCli(['invoices', 'mark-paid', invoice.id, '--json'], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: 'paid' });

    const note = await runCli(
      ['invoices', 'credit-note', invoice.id, '--amount', '2.34', '--reason', 'outage on the 3rd', '--json'],
      env,
    );
    expect(note.code, note.stderr).toBe(0);
    expect(JSON.parse(note.stdout)).toMatchObject({
      kind: 'credit_note',
      corrects_invoice_id: invoice.id,
      total: { minor: '-234', formatted: '-$2.34' },
    });
    const tooMuch = await runCli(['invoices', 'credit-note', invoice.id, '--amount', '10.01', '--reason', 'more'], env);
    expect(tooMuch.code).toBe(1);
    expect(tooMuch.stderr).toContain('validation_failed');
    const noReason = await runCli(['invoices', 'credit-note', invoice.id, '--amount', '1'], env);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('usage_error');
  });
});
