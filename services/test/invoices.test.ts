import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlan } from '../src/plans/plan-catalog.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);

beforeAll(async () => {
  testApi = await startTestApi();
});
afterAll(async () => {
  await testApi?.dispose();
});

describe(`invoices over HTTP (${expectedDatabaseDriver})`, () => {
  let operator: SignedInAccount;
  let owner: SignedInAccount;
  let plain: SignedInAccount;
  let outsider: SignedInAccount;
  let team: { id: string; slug: string };
  let invoiceId: string;

  beforeAll(async () => {
    [operator, owner, plain, outsider] = await Promise.all([
      account('operator', 'admin'),
      account('owner'),
      account('plain'),
      account('outsider'),
    ]);
    team = (await call(owner, 'POST', '/v1/teams', { name: `Invoices ${randomBytes(3).toString('hex')}` })).body;
    await testApi.database.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'user')`, [
      team.id,
      plain.id,
    ]);
    await call(outsider, 'POST', '/v1/teams', { name: `Other ${randomBytes(3).toString('hex')}` });
    const plan = `inv-${randomBytes(3).toString('hex')}`;
    await testApi.database.transaction((tx) =>
      createPlan(tx, {
        slug: plan,
        name: 'Invoice Plan',
        trial_days: 0,
        prices: [{ currency: 'EUR', interval: 'month', amount: '19.99' }],
      }),
    );
    const subscribed = await call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan, currency: 'EUR' });
    expect(subscribed.status).toBe(201);
    // The month ends: the operator closes it (as the job does every minute).
    const end = subscribed.body.current_period_end as string;
    const closeAt = new Date(Date.parse(end) + 60_000).toISOString();
    expect((await call(owner, 'POST', '/v1/billing/close-period', { now: closeAt })).status).toBe(403);
    const closed = await call(operator, 'POST', '/v1/billing/close-period', { now: closeAt });
    expect(closed.status).toBe(200);
    expect(closed.body.invoiced).toBeGreaterThanOrEqual(1);
    const list = await call(owner, 'GET', `/v1/teams/${team.slug}/invoices`);
    expect(list.status).toBe(200);
    expect(list.body.invoices).toHaveLength(1);
    invoiceId = list.body.invoices[0].id;
  });

  it('shows the invoice with its lines and totals in minor units and formatted', async () => {
    const shown = await call(owner, 'GET', `/v1/teams/${team.slug}/invoices/${invoiceId}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({
      status: 'open',
      currency: 'EUR',
      subtotal: { minor: '1999', formatted: '€19.99' },
      tax: { minor: '0' },
      total: { minor: '1999', formatted: '€19.99' },
      lines: [{ kind: 'base_fee', quantity: '1', amount: { minor: '1999' } }],
    });
  });

  it('renders a valid PDF of our invoice with its totals', async () => {
    const pdf = await call(owner, 'GET', `/v1/teams/${team.slug}/invoices/${invoiceId}/pdf`);
    expect(pdf.status).toBe(200);
    expect(pdf.type).toBe('application/pdf');
    const text = pdf.bytes.toString('latin1');
    expect(text.startsWith('%PDF-1.4')).toBe(true);
    expect(text.trimEnd().endsWith('%%EOF')).toBe(true);
    // The cross-reference table points at each object.
    const xref = Number(/startxref\n(\d+)/.exec(text)?.[1]);
    expect(text.slice(xref, xref + 4)).toBe('xref');
    for (const match of text.matchAll(/^(\d{10}) 00000 n $/gm)) {
      expect(text.slice(Number(match[1])).match(/^\d+ 0 obj/)).not.toBeNull();
    }
    // € is WinAnsi 0x80 (octal 200) in the text operators.
    expect(text).toContain('(Total) Tj');
    expect(text).toContain('(\\20019.99) Tj');
    expect(text).toContain(`(Team: `);
    let pdftotext = false;
    try {
      execFileSync('pdftotext', ['-v'], { stdio: 'ignore' });
      pdftotext = true;
    } catch {}
    if (pdftotext) {
      const extracted = execFileSync('pdftotext', ['-', '-'], { input: pdf.bytes }).toString('utf8');
      expect(extracted).toContain('€19.99');
    }
  });

  it('keeps invoices to those with billing:read on the team', async () => {
    expect((await call(plain, 'GET', `/v1/teams/${team.slug}/invoices`)).status).toBe(403);
    expect([403, 404]).toContain((await call(outsider, 'GET', `/v1/teams/${team.slug}/invoices/${invoiceId}`)).status);
    expect((await call(undefined, 'GET', `/v1/teams/${team.slug}/invoices`)).status).toBe(401);
    expect((await call(owner, 'GET', `/v1/teams/${team.slug}/invoices/not-an-id`)).status).toBe(404);
  });

  it('lets only operators mark an invoice paid and issue credit notes; bad inputs write nothing', async () => {
    expect((await call(owner, 'POST', `/v1/invoices/${invoiceId}/mark-paid`)).status).toBe(403);
    expect(
      (await call(owner, 'POST', `/v1/invoices/${invoiceId}/credit-notes`, { amount: '1', reason: 'x' })).status,
    ).toBe(403);
    const before = (
      await testApi.database.query('SELECT count(*)::int AS n FROM invoices WHERE team_id = $1', [team.id])
    ).rows;
    for (const body of [
      { amount: '20.00', reason: 'more than the invoice' },
      { amount: '1.001', reason: 'too many decimals' },
      { amount: '-1', reason: 'negative' },
      { amount: '1' },
      { amount: '1', reason: 'ok', extra: true },
    ]) {
      const refused = await call(operator, 'POST', `/v1/invoices/${invoiceId}/credit-notes`, body);
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('validation_failed');
    }
    expect(
      (await testApi.database.query('SELECT count(*)::int AS n FROM invoices WHERE team_id = $1', [team.id])).rows,
    ).toEqual(before);
    expect((await call(operator, 'POST', '/v1/invoices/00000000-0000-4000-8000-000000000000/mark-paid')).status).toBe(
      404,
    );

    const paid = await call(operator, 'POST', `/v1/invoices/${invoiceId}/mark-paid`);
    expect(paid.status).toBe(200);
    expect(paid.body.status).toBe('paid');
    const note = await call(operator, 'POST', `/v1/invoices/${invoiceId}/credit-notes`, {
      amount: '5.00',
      reason: 'goodwill',
    });
    expect(note.status).toBe(201);
    expect(note.body).toMatchObject({ kind: 'credit_note', corrects_invoice_id: invoiceId, total: { minor: '-500' } });
    const original = await call(owner, 'GET', `/v1/teams/${team.slug}/invoices/${invoiceId}`);
    expect(original.body.total.minor).toBe('1999');
    // A credit note is settled when issued: marking it paid changes nothing.
    expect((await call(operator, 'POST', `/v1/invoices/${note.body.id}/mark-paid`)).status).toBe(200);
  });
});
