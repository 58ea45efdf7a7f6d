import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { createCreditNote, getInvoice, listInvoices, pushCreditNote } from '../src/billing/invoices.js';
import { closeBillingPeriod } from '../src/billing/period-close.js';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { reconcileWithStripe } from '../src/billing/stripe-reconciliation.js';
import { subscribe } from '../src/billing/subscriptions.js';
import { createLogger } from '../src/logging/logger.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import { createTeam } from '../src/teams/teams.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

const logger = createLogger({ level: 'silent' });
let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);
let stripe: StripeServer;

beforeAll(async () => {
  stripe = await startStripeServer();
  testApi = await startTestApi({
    stripeWebhookSecret: stripe.webhookSecret,
    stripe: { secretKey: stripe.apiKey, apiBase: stripe.url },
  });
});
afterAll(async () => {
  await testApi?.dispose();
  await stripe?.close();
});

const tag = () => randomBytes(3).toString('hex');
const stripeConfig = () => ({ secretKey: stripe.apiKey, apiBase: stripe.url, webhookSecret: stripe.webhookSecret });
const provider = () => createStripeBillingProvider(stripeConfig(), { maxNetworkRetries: 0 });
const sdk = () => new Stripe(stripe.apiKey, stripe.stripeConfig());

type Account = SignedInAccount;

const april = new Date('2026-04-01T00:00:00Z');
const may = new Date('2026-05-01T00:00:00Z');

/**
 * A Stripe-collected team whose April overage (200 widgets beyond the 100 included, at $0.10: $20.00)
 * our period close invoiced and pushed to Stripe, finalized there (open, $20.00 due).
 */
async function pushedInvoice(owner: Account) {
  const database = testApi.database;
  const slug = `cn-${tag()}`;
  await database.transaction((tx) =>
    createPlan(tx, {
      slug,
      name: 'Widgets',
      trial_days: 0,
      prices: [{ currency: 'USD', interval: 'month', amount: '10.00' }],
      included: { widgets: 100 },
      overage_allowed: true,
      overage: { widgets: { USD: { model: 'per_unit', unit_price: '0.10' } } },
    }),
  );
  const team = await database.transaction((tx) => createTeam(tx, { name: `Notes ${tag()}`, creatorUserId: owner.id }));
  await subscribe(
    { database, provider: createManualBillingProvider(), graceDays: 7, logger, now: () => april },
    {
      team: { id: team.id, name: team.name },
      plan: slug,
      interval: 'month',
      currency: 'USD',
      actor: { actorLabel: 't' },
    },
  );
  await database.query("UPDATE subscriptions SET provider = 'stripe' WHERE team_id = $1", [team.id]);
  await database.query(
    `INSERT INTO usage_metric_day (period_start, team_id, metric, events, quantity_sum, quantity_max, last_quantity, last_at)
     VALUES ($1, $2, 'widgets', 1, 300, 300, 300, $1)`,
    [new Date('2026-04-10T00:00:00Z'), team.id],
  );
  await database.query(
    'UPDATE subscriptions SET current_period_start = $2, current_period_end = $3 WHERE team_id = $1',
    [team.id, may, new Date('2026-06-01T00:00:00Z')],
  );
  await closeBillingPeriod(database, { now: new Date(may.getTime() + 60_000), provider: provider() });
  const [invoice] = await listInvoices(database, team.id);
  expect(invoice).toMatchObject({ pushState: 'finalized', totalMinor: 2000n, status: 'open' });
  return { team, invoice: invoice as NonNullable<typeof invoice> };
}

const creditNotesAtStripe = (providerInvoiceId: string) =>
  stripe.objects('credit_note').filter((note) => note.invoice === providerInvoiceId);

describe(`credit notes of invoices pushed to Stripe (${expectedDatabaseDriver})`, () => {
  let operator: Account;
  let owner: Account;

  beforeAll(async () => {
    [operator, owner] = await Promise.all([account('operator', 'admin'), account('owner')]);
  });

  it('creates the Stripe credit note with a key from our id and records its id; the open invoice owes less there', async () => {
    const { invoice } = await pushedInvoice(owner);
    const note = await call(operator, 'POST', `/v1/invoices/${invoice.id}/credit-notes`, {
      amount: '5.00',
      reason: 'service outage',
    });
    expect(note.status).toBe(201);
    expect(note.body).toMatchObject({ kind: 'credit_note', push_state: 'finalized', total: { minor: '-500' } });
    expect(note.body.provider_credit_note_id).toMatch(/^cn_/);
    const [remote] = creditNotesAtStripe(invoice.providerInvoiceId as string);
    expect(remote).toMatchObject({
      id: note.body.provider_credit_note_id,
      amount: 500,
      type: 'pre_payment',
      metadata: { tollgate_credit_note_id: note.body.id },
    });
    expect(stripe.idempotencyKeys).toContain(`tollgate:credit-note:${note.body.id}`);
    expect(stripe.object(invoice.providerInvoiceId as string)).toMatchObject({
      amount_remaining: 1500,
      status: 'open',
    });
    // Our invoice is unchanged: the credit note is its own document.
    expect((await getInvoice(testApi.database, invoice.id)).totalMinor).toBe(2000n);
  });

  it('is retried after a crash or a failed push without a second Stripe credit note, and reconciliation shows it until then', async () => {
    const { invoice, team } = await pushedInvoice(owner);
    const note = await createCreditNote(testApi.database, {
      invoiceId: invoice.id,
      amount: '3.00',
      reason: 'goodwill',
      actor: { actorLabel: 'test' },
    });
    expect(note.pushState).toBe('pending');
    // Stripe is unreachable: the push fails and the credit note stays pending.
    const down = createStripeBillingProvider(
      { ...stripeConfig(), apiBase: 'http://127.0.0.1:9' },
      { maxNetworkRetries: 0 },
    );
    await expect(pushCreditNote(testApi.database, down, note.id)).rejects.toThrow();
    expect((await getInvoice(testApi.database, note.id)).pushState).toBe('pending');
    const report = await reconcileWithStripe(testApi.database, {
      stripe: stripeConfig(),
      clientOptions: { maxNetworkRetries: 0 },
    });
    expect(report.differences).toContainEqual(
      expect.objectContaining({
        object: 'credit_note',
        kind: 'missing_in_stripe',
        invoiceId: note.id,
        teamId: team.id,
      }),
    );

    // A push that reached Stripe and crashed before recording the id: the next run gets the same credit note.
    const reached = await provider().invoices?.createCreditNote({
      creditNoteId: note.id,
      providerInvoiceId: invoice.providerInvoiceId as string,
      amountMinor: 300n,
      memo: `Tollgate credit note ${note.number} for ${invoice.number}`,
    });
    await closeBillingPeriod(testApi.database, { now: new Date(may.getTime() + 120_000), provider: provider() });
    const pushed = await getInvoice(testApi.database, note.id);
    expect(pushed).toMatchObject({ pushState: 'finalized', providerCreditNoteId: reached });
    expect(creditNotesAtStripe(invoice.providerInvoiceId as string)).toHaveLength(1);
    expect(stripe.object(invoice.providerInvoiceId as string)?.amount_remaining).toBe(1700);
    // Pushed once: pushing again calls Stripe no more.
    const requests = stripe.requests.length;
    expect(await pushCreditNote(testApi.database, provider(), note.id)).toBe(false);
    expect(stripe.requests.length).toBe(requests);
    const after = await reconcileWithStripe(testApi.database, {
      stripe: stripeConfig(),
      clientOptions: { maxNetworkRetries: 0 },
    });
    expect(after.differences.filter((difference) => difference.invoiceId === note.id)).toEqual([]);
  });

  it('credits a paid invoice to the customer balance at Stripe', async () => {
    const { invoice } = await pushedInvoice(owner);
    await stripe.payInvoice(invoice.providerInvoiceId as string);
    await call(operator, 'POST', `/v1/invoices/${invoice.id}/mark-paid`);
    const note = await call(operator, 'POST', `/v1/invoices/${invoice.id}/credit-notes`, {
      amount: '20.00',
      reason: 'refund as credit',
    });
    expect(note.status).toBe(201);
    expect(note.body.push_state).toBe('finalized');
    const [remote] = creditNotesAtStripe(invoice.providerInvoiceId as string);
    expect(remote).toMatchObject({ amount: 2000, type: 'post_payment', out_of_band_amount: 0 });
    expect(remote?.customer_balance_transaction).toMatch(/^cbtxn_/);
  });

  it('the local Stripe refuses a credit note above what the invoice leaves, as Stripe does', async () => {
    const { invoice } = await pushedInvoice(owner);
    const client = sdk();
    await expect(
      client.creditNotes.create({ invoice: invoice.providerInvoiceId as string, amount: 2001 }),
    ).rejects.toMatchObject({ type: 'StripeInvalidRequestError', param: 'amount' });
    await expect(client.creditNotes.create({ invoice: invoice.providerInvoiceId as string })).rejects.toMatchObject({
      type: 'StripeInvalidRequestError',
    });
    await client.creditNotes.create({ invoice: invoice.providerInvoiceId as string, amount: 1500 });
    await expect(
      client.creditNotes.create({
        invoice: invoice.providerInvoiceId as string,
        lines: [{ type: 'custom_line_item', unit_amount: 600, quantity: 1, description: 'more' }],
      }),
    ).rejects.toMatchObject({ param: 'amount' });
    expect(creditNotesAtStripe(invoice.providerInvoiceId as string)).toHaveLength(1);
    // Our side refuses more than is left on our invoice before anything reaches Stripe.
    const requests = stripe.requests.length;
    const refused = await call(operator, 'POST', `/v1/invoices/${invoice.id}/credit-notes`, {
      amount: '20.01',
      reason: 'too much',
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('validation_failed');
    expect(stripe.requests.length).toBe(requests);
  });
});
