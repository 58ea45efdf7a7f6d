import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { getInvoice, listInvoices, voidInvoice } from '../src/billing/invoices.js';
import { closeBillingPeriod } from '../src/billing/period-close.js';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { getSubscription, markSubscriptionPastDue, subscribe } from '../src/billing/subscriptions.js';
import { creditBalance, grantCredits } from '../src/credits/credit-ledger.js';
import { createLogger } from '../src/logging/logger.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import { createTeam } from '../src/teams/teams.js';
import { accountsOn, type Json, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

const logger = createLogger({ level: 'silent' });
let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);
let stripe: StripeServer;

beforeAll(async () => {
  testApi = await startTestApi();
  stripe = await startStripeServer();
});
afterAll(async () => {
  await stripe?.close();
  await testApi?.dispose();
});

const tag = () => randomBytes(3).toString('hex');

type Account = SignedInAccount;

const march = new Date('2026-03-01T00:00:00Z');
const april = new Date('2026-04-01T00:00:00Z');
const may = new Date('2026-05-01T00:00:00Z');

/**
 * A team on a manual plan of $10.00 a month with 100 widgets included and $0.10 per widget beyond,
 * holding 50 widget credits and $15.00 of credit, that used 300 widgets in March: its March invoice
 * takes the 50 widgets (150 left over, $15.00) and the $15.00, and totals the $10.00 fee.
 */
async function teamWithCreditedInvoice(
  owner: Account,
  usdGrants: { amount: bigint; expiresAt?: Date }[] = [{ amount: 1500n }],
) {
  const database = testApi.database;
  const slug = `void-${tag()}`;
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
  const team = await database.transaction((tx) => createTeam(tx, { name: `Void ${tag()}`, creatorUserId: owner.id }));
  const service = { database, provider: createManualBillingProvider(), graceDays: 7, logger, now: () => march };
  await subscribe(service, {
    team: { id: team.id, name: team.name },
    plan: slug,
    interval: 'month',
    currency: 'USD',
    actor: { actorLabel: 'test' },
  });
  await database.query(
    `INSERT INTO usage_metric_day (period_start, team_id, metric, events, quantity_sum, quantity_max, last_quantity, last_at)
     VALUES ($1, $2, 'widgets', 3, 300, 200, 100, $1)`,
    [new Date('2026-03-10T00:00:00Z'), team.id],
  );
  await database.transaction(async (tx) => {
    for (const [index, grant] of usdGrants.entries()) {
      await grantCredits(tx, {
        teamId: team.id,
        pool: { currency: 'USD' },
        amount: grant.amount,
        source: 'operator',
        reason: 'prepaid',
        expiresAt: grant.expiresAt ?? null,
        idempotencyKey: `usd-${index}-${team.id}`,
        now: march,
      });
    }
    await grantCredits(tx, {
      teamId: team.id,
      pool: { metric: 'widgets' },
      amount: 50n,
      source: 'operator',
      reason: 'prepaid',
      idempotencyKey: `widgets-${team.id}`,
    });
  });
  // 45 days to pay: March's invoice is not overdue yet when April closes (a subscription past due
  // is not renewed, so April would not be invoiced).
  await closeBillingPeriod(database, {
    now: new Date(april.getTime() + 60_000),
    provider: service.provider,
    paymentTermsDays: 45,
  });
  const [invoice] = await listInvoices(database, team.id);
  if (!invoice) throw new Error('the period close stored no invoice');
  return { team, invoice, service };
}

const balances = async (teamId: string) =>
  Object.fromEntries(
    (await creditBalance(testApi.database, teamId)).map((balance) => [
      'currency' in balance.pool ? balance.pool.currency : balance.pool.metric,
      balance.balance,
    ]),
  );

describe(`voiding an invoice (${expectedDatabaseDriver})`, () => {
  let operator: Account;
  let owner: Account;

  beforeAll(async () => {
    [operator, owner] = await Promise.all([account('operator', 'admin'), account('owner')]);
  });

  it('gives back exactly the credits its period close took, once, with the reason, the webhook and the audit entry', async () => {
    const { team, invoice } = await teamWithCreditedInvoice(owner);
    expect(invoice.status).toBe('open');
    expect(invoice.totalMinor).toBe(1000n);
    expect(invoice.creditsAppliedMinor).toBe(1500n);
    expect(await balances(team.id)).toEqual({ USD: 0n, widgets: 0n });

    const voided = await call(operator, 'POST', `/v1/invoices/${invoice.id}/void`, { reason: 'billed in error' });
    expect(voided.status).toBe(200);
    expect(voided.body).toMatchObject({ id: invoice.id, status: 'void', void_reason: 'billed in error' });
    expect(Date.parse(voided.body.voided_at)).not.toBeNaN();
    expect(await balances(team.id)).toEqual({ USD: 1500n, widgets: 50n });

    // Voiding it again answers it unchanged and gives back nothing more.
    const again = await call(operator, 'POST', `/v1/invoices/${invoice.id}/void`, { reason: 'twice' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'void', void_reason: 'billed in error' });
    expect(await balances(team.id)).toEqual({ USD: 1500n, widgets: 50n });

    const reversals = await testApi.database.query<{ pool: string; delta: string; reference: string }>(
      `SELECT pool, delta::text AS delta, reference FROM credit_entries
       WHERE team_id = $1 AND kind = 'consumption_reversal' ORDER BY pool`,
      [team.id],
    );
    expect(reversals.rows).toEqual([
      { pool: 'USD', delta: '1500', reference: `invoice:${invoice.id}` },
      { pool: 'widgets', delta: '50', reference: `invoice:${invoice.id}` },
    ]);
    const ledger = await call(owner, 'GET', `/v1/teams/${team.id}/credits`);
    expect(ledger.status).toBe(200);
    expect(ledger.body.entries.map((entry: Json) => entry.kind)).toContain('consumption_reversal');

    const events = await testApi.database.query<{ payload: Json }>(
      "SELECT payload FROM webhook_events WHERE team_id = $1 AND type = 'invoice.voided'",
      [team.id],
    );
    expect(events.rows).toHaveLength(1);
    expect(JSON.stringify(events.rows[0]?.payload)).toContain(invoice.id);
    const audit = await testApi.database.query<{ actor_user_id: string; details: Json }>(
      "SELECT actor_user_id, details FROM audit_log WHERE action = 'invoice.voided' AND target_id = $1",
      [invoice.id],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]?.actor_user_id).toBe(operator.id);
    expect(audit.rows[0]?.details).toMatchObject({ reason: 'billed in error', total_minor: '1000' });
  });

  it('refuses a paid invoice (a credit note corrects it), and lets only operators void; bad input writes nothing', async () => {
    const { team, invoice } = await teamWithCreditedInvoice(owner);
    const state = async () =>
      (
        await testApi.database.query(
          `SELECT (SELECT status FROM invoices WHERE id = $1::uuid) AS status,
             (SELECT count(*)::int FROM credit_entries WHERE team_id = $2) AS entries,
             (SELECT count(*)::int FROM audit_log WHERE target_id = $1::text AND action = 'invoice.voided') AS audits`,
          [invoice.id, team.id],
        )
      ).rows[0];
    const before = await state();
    expect((await call(owner, 'POST', `/v1/invoices/${invoice.id}/void`, {})).status).toBe(403);
    expect((await call(undefined, 'POST', `/v1/invoices/${invoice.id}/void`, {})).status).toBe(401);
    for (const body of [{ reason: '' }, { reason: 'x'.repeat(501) }, { reason: 'ok', extra: 1 }]) {
      const refused = await call(operator, 'POST', `/v1/invoices/${invoice.id}/void`, body);
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('validation_failed');
    }
    const missing = await call(operator, 'POST', '/v1/invoices/00000000-0000-4000-8000-000000000000/void', {});
    expect(missing.status).toBe(404);
    expect(await state()).toEqual(before);

    expect((await call(operator, 'POST', `/v1/invoices/${invoice.id}/mark-paid`)).status).toBe(200);
    const paid = await call(operator, 'POST', `/v1/invoices/${invoice.id}/void`, { reason: 'too late' });
    expect(paid.status).toBe(409);
    expect(paid.body.error.code).toBe('invoice_not_voidable');
    expect(paid.body.error.message).toContain('paid');
    expect(JSON.stringify(paid.body.error)).toContain('credit note');
    const after = await state();
    expect(after).toMatchObject({ status: 'paid', entries: before?.entries, audits: 0 });
    expect(await balances(team.id)).toEqual({ USD: 0n, widgets: 0n });

    // A credit note is not voided either.
    const note = await call(operator, 'POST', `/v1/invoices/${invoice.id}/credit-notes`, {
      amount: '1.00',
      reason: 'goodwill',
    });
    expect(note.status).toBe(201);
    const refusedNote = await call(operator, 'POST', `/v1/invoices/${note.body.id}/void`, {});
    expect(refusedNote.status).toBe(409);
    expect(refusedNote.body.error.code).toBe('invoice_not_voidable');
  });

  it('gives each amount back to the grant it came from: what expired since is not given back', async () => {
    // $10.00 expiring mid-April is taken first, then $5.00 of the $10.00 that never expires.
    const { team, invoice, service } = await teamWithCreditedInvoice(owner, [
      { amount: 1000n, expiresAt: new Date('2026-04-15T00:00:00Z') },
      { amount: 1000n },
    ]);
    expect(invoice.creditsAppliedMinor).toBe(1500n);
    expect(await balances(team.id)).toEqual({ USD: 500n, widgets: 0n });
    // Voided in May: the April-expiring $10.00 would have lapsed unused; the $5.00 comes back.
    const voided = await voidInvoice(
      { ...service, now: () => may },
      { invoiceId: invoice.id, reason: 'late correction', actor: { actorLabel: 'test' } },
    );
    expect(voided.restored).toEqual([
      { pool: 'widgets', amount: 50n },
      { pool: 'USD', amount: 500n },
    ]);
    expect(await balances(team.id)).toEqual({ USD: 1000n, widgets: 50n });
    const remainders = await testApi.database.query<{ remaining: string; expires_at: Date | null }>(
      `SELECT r.remaining::text AS remaining, r.expires_at FROM credit_grant_remainders r
       WHERE r.team_id = $1 AND r.pool = 'USD' ORDER BY r.expires_at NULLS LAST`,
      [team.id],
    );
    expect(remainders.rows.map((row) => row.remaining)).toEqual(['0', '1000']);
  });

  it('makes a past_due subscription active again once no invoice of the team is overdue', async () => {
    const { team, invoice: marchInvoice, service } = await teamWithCreditedInvoice(owner);
    // April closes too: two open invoices.
    await closeBillingPeriod(testApi.database, {
      now: new Date(may.getTime() + 60_000),
      provider: service.provider,
      paymentTermsDays: 45,
    });
    const open = (await listInvoices(testApi.database, team.id)).filter((invoice) => invoice.status === 'open');
    expect(open).toHaveLength(2);
    const aprilInvoice = open.find((invoice) => invoice.id !== marchInvoice.id);
    await markSubscriptionPastDue({ ...service, now: () => new Date() }, { teamId: team.id });
    expect((await getSubscription(testApi.database, team.id))?.status).toBe('past_due');

    // Today, both invoices are past their due dates (April 15 and June 15, 2026).
    const today = { ...service, now: () => new Date() };
    await voidInvoice(today, { invoiceId: marchInvoice.id, actor: { actorLabel: 'test' } });
    // April's invoice is still owed.
    expect((await getSubscription(testApi.database, team.id))?.status).toBe('past_due');
    await voidInvoice(today, { invoiceId: aprilInvoice?.id as string, actor: { actorLabel: 'test' } });
    expect((await getSubscription(testApi.database, team.id))?.status).toBe('active');
    expect((await getInvoice(testApi.database, marchInvoice.id)).voidReason).toBeNull();
  });

  it('voids an invoice pushed to Stripe there too, keyed by our id; one Stripe already collected is refused', async () => {
    const provider = createStripeBillingProvider(
      { secretKey: stripe.apiKey, apiBase: stripe.url, webhookSecret: stripe.webhookSecret },
      { maxNetworkRetries: 0 },
    );
    const pushedInvoice = async (pushWith = provider) => {
      const { team, invoice, service } = await teamWithCreditedInvoice(owner);
      // Stripe collects this subscription from April, renews it into May, and April's overage is pushed there.
      await testApi.database.query("UPDATE subscriptions SET provider = 'stripe' WHERE team_id = $1", [team.id]);
      await testApi.database.query(
        `INSERT INTO usage_metric_day (period_start, team_id, metric, events, quantity_sum, quantity_max, last_quantity, last_at)
         VALUES ($1, $2, 'widgets', 1, 300, 300, 300, $1)`,
        [new Date('2026-04-10T00:00:00Z'), team.id],
      );
      await testApi.database.query(
        'UPDATE subscriptions SET current_period_start = $2, current_period_end = $3 WHERE team_id = $1',
        [team.id, may, new Date('2026-06-01T00:00:00Z')],
      );
      await closeBillingPeriod(testApi.database, { now: new Date(may.getTime() + 60_000), provider: pushWith });
      const pushed = (await listInvoices(testApi.database, team.id)).find((candidate) => candidate.id !== invoice.id);
      if (pushWith === provider) {
        expect(pushed?.pushState).toBe('finalized');
        expect(stripe.object(pushed?.providerInvoiceId as string)?.status).toBe('open');
      }
      return { team, invoice: pushed as NonNullable<typeof pushed>, service: { ...service, provider } };
    };

    const first = await pushedInvoice();
    const voided = await voidInvoice(first.service, {
      invoiceId: first.invoice.id,
      reason: 'duplicate',
      actor: { actorLabel: 'test' },
    });
    expect(voided.invoice.status).toBe('void');
    expect(stripe.object(first.invoice.providerInvoiceId as string)?.status).toBe('void');
    const key = `tollgate:invoice-void:${first.invoice.id}`;
    expect(stripe.idempotencyKeys).toContain(key);
    const calls = () => stripe.requests.filter((request) => request.path.endsWith('/void')).length;
    const before = calls();
    expect(
      (await voidInvoice(first.service, { invoiceId: first.invoice.id, actor: { actorLabel: 'test' } })).changed,
    ).toBe(false);
    expect(calls()).toBe(before);

    // Stripe collected it before we heard: Stripe refuses, and nothing changes on our side.
    const second = await pushedInvoice();
    await stripe.payInvoice(second.invoice.providerInvoiceId as string);
    await expect(
      voidInvoice(second.service, { invoiceId: second.invoice.id, actor: { actorLabel: 'test' } }),
    ).rejects.toMatchObject({ code: 'invoice_not_voidable' });
    const after = await getInvoice(testApi.database, second.invoice.id);
    expect(after.status).toBe('open');
    expect(after.voidedAt).toBeNull();
    const audits = await testApi.database.query(
      "SELECT 1 FROM audit_log WHERE action = 'invoice.voided' AND target_id = $1",
      [second.invoice.id],
    );
    expect(audits.rows).toHaveLength(0);

    // Stripe was unreachable when the period closed: voided before its push, it never reaches Stripe.
    const down = createStripeBillingProvider(
      { secretKey: stripe.apiKey, apiBase: 'http://127.0.0.1:9', webhookSecret: stripe.webhookSecret },
      { maxNetworkRetries: 0 },
    );
    const third = await pushedInvoice(down);
    expect(third.invoice.pushState).toBe('pending');
    const unpushed = await voidInvoice(third.service, { invoiceId: third.invoice.id, actor: { actorLabel: 'test' } });
    expect(unpushed.invoice).toMatchObject({ status: 'void', pushState: 'none', providerInvoiceId: null });
    await closeBillingPeriod(testApi.database, { now: new Date(may.getTime() + 120_000), provider });
    expect(
      stripe
        .objects('invoice')
        .filter((remote) => (remote.metadata as Record<string, string>)?.tollgate_invoice_id === third.invoice.id),
    ).toEqual([]);
  });
});
