import { randomBytes } from 'node:crypto';
import {
  type BillingProvider,
  changeSubscriptionPlan,
  closeBillingPeriod,
  createCreditNote,
  createLogger,
  createManualBillingProvider,
  createMemoryUsageCounterStore,
  createPlan,
  createStripeBillingProvider,
  createTeam,
  createUserWithPassword,
  type Database,
  flushUsage,
  getSubscription,
  grantCredits,
  listInvoices,
  markInvoicePaid,
  openRedisUsageCounterStore,
  runMigrations,
  runSubscriptionLifecycle,
  subscribe,
  type UsageCounterStore,
} from '@tollgate/services';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  openTestDatabase,
  type StripeServer,
  startStripeServer,
  testRedisUrl,
  uniqueKey,
} from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUsageRecorder } from '../src/metering/usage-recorder.js';

/*
 * Issue 5, "Rating and invoices": a month simulated with a controllable clock. Calls are counted by
 * the gateway's usage recorder into the counter store (memory, or Redis with TEST_REDIS_URL) and
 * flushed into the rollups by the flusher, as in production; the period close then rates them.
 */

const logger = createLogger({ level: 'silent' });
let database: Database;
let dispose: () => Promise<void>;
let store: UsageCounterStore;
let stripe: StripeServer;
const manual = createManualBillingProvider();

beforeAll(async () => {
  const opened = await openTestDatabase();
  database = opened.value;
  dispose = opened.dispose;
  await runMigrations(database);
  store = testRedisUrl
    ? await openRedisUsageCounterStore(
        { driver: 'redis', url: testRedisUrl },
        { logger, keyPrefix: `${uniqueKey('period-close')}:` },
      )
    : createMemoryUsageCounterStore();
  stripe = await startStripeServer();
});

afterAll(async () => {
  await store?.close();
  await stripe?.close();
  await dispose?.();
});

const tag = () => randomBytes(3).toString('hex');

/** A Pro plan: 100,000 calls included, overage $0.0005 a call graduated to $0.0003 above 1,000,000. */
async function proPlan(trialDays = 0): Promise<string> {
  const slug = `pro-${tag()}`;
  const graduated = {
    model: 'graduated' as const,
    tiers: [
      { up_to: 1_000_000, unit_price: '0.0005' },
      { up_to: null, unit_price: '0.0003' },
    ],
  };
  await database.transaction((tx) =>
    createPlan(tx, {
      slug,
      name: 'Pro',
      trial_days: trialDays,
      prices: [
        { currency: 'USD', interval: 'month', amount: '49.00' },
        { currency: 'USD', interval: 'year', amount: '490.00' },
        { currency: 'EUR', interval: 'month', amount: '45.00' },
      ],
      included: { calls: 100_000 },
      overage_allowed: true,
      overage: { calls: { USD: graduated, EUR: graduated } },
    }),
  );
  return slug;
}

async function subscribedTeam(input: {
  plan: string;
  currency: 'USD' | 'EUR';
  at: Date;
  provider?: BillingProvider;
  interval?: 'month' | 'year';
}) {
  const user = await database.transaction((tx) =>
    createUserWithPassword(tx, { email: `owner.${tag()}@example.com`, password: 'period close passphrase 1' }),
  );
  const team = await database.transaction((tx) => createTeam(tx, { name: `Team ${tag()}`, creatorUserId: user.id }));
  const result = await subscribe(
    { database, provider: input.provider ?? manual, graceDays: 7, logger, now: () => input.at },
    {
      team: { id: team.id, name: team.name },
      plan: input.plan,
      interval: input.interval ?? 'month',
      currency: input.currency,
      actor: { actorLabel: 'test' },
    },
  );
  expect(result.kind).toBe('subscribed');
  return team;
}

/** `calls` calls of `teamId` through the gateway's recorder, spread over the period, then flushed. */
async function meter(teamId: string, calls: number, from: Date, to: Date): Promise<void> {
  const recorder = createUsageRecorder({ store, logger, flushIntervalMs: 60_000 });
  const span = to.getTime() - from.getTime();
  for (let i = 0; i < calls; i++) {
    recorder.record({
      teamId,
      keyId: 'key-1',
      apiId: 'api-1',
      at: from.getTime() + Math.floor((i * span) / calls),
      status: 200,
      requestBytes: 10,
      responseBytes: 100,
      latencyMs: 1,
      overage: i >= 100_000,
    });
  }
  await recorder.close();
  await flushUsage({ store, database });
}

const march = new Date('2026-03-01T00:00:00Z');
const april = new Date('2026-04-01T00:00:00Z');
const afterApril = new Date('2026-04-01T00:01:00Z');

describe(`the period close (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  for (const currency of ['USD', 'EUR'] as const) {
    it(`invoices a month of 150,000 calls on Pro as the base fee plus exactly 50,000 overage units = 25.00 ${currency}`, async () => {
      const plan = await proPlan();
      const team = await subscribedTeam({ plan, currency, at: march });
      await meter(team.id, 150_000, march, new Date(april.getTime() - 1));

      // Before the period ends, nothing is invoiced.
      expect(
        (await closeBillingPeriod(database, { now: new Date('2026-03-31T23:59:00Z'), provider: manual })).invoiced,
      ).toBe(0);
      const report = await closeBillingPeriod(database, { now: afterApril, provider: manual });
      expect(report.invoiced).toBeGreaterThanOrEqual(1);
      const [invoice, ...others] = await listInvoices(database, team.id);
      expect(others).toHaveLength(0);
      expect(invoice?.currency).toBe(currency);
      expect(invoice?.status).toBe('open');
      expect(invoice?.periodStart.toISOString()).toBe(march.toISOString());
      expect(invoice?.periodEnd.toISOString()).toBe(april.toISOString());
      const base = currency === 'USD' ? 4900n : 4500n;
      expect(invoice?.lines.map((line) => [line.kind, line.metric, line.quantity, line.amountMinor])).toEqual([
        ['base_fee', null, 1n, base],
        ['overage', 'calls', 50_000n, 2500n],
      ]);
      expect(invoice?.subtotalMinor).toBe(base + 2500n);
      expect(invoice?.taxMinor).toBe(0n);
      expect(invoice?.totalMinor).toBe(base + 2500n);

      // The subscription moved on to April, and a rerun invoices nothing twice.
      const sub = await database.query<{ current_period_start: Date }>(
        "SELECT current_period_start FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'",
        [team.id],
      );
      // (at least April: on a shared database another suite's lifecycle run, at the real now, may have moved it further)
      expect(sub.rows[0]?.current_period_start.getTime()).toBeGreaterThanOrEqual(april.getTime());
      await closeBillingPeriod(database, { now: afterApril, provider: manual });
      expect(await listInvoices(database, team.id)).toHaveLength(1);

      // finalized: immutable, in the database itself
      await expect(
        database.query('UPDATE invoices SET total_minor = 1, subtotal_minor = 1 WHERE id = $1', [invoice?.id]),
      ).rejects.toThrow(/immutable/);
      await expect(
        database.query('UPDATE invoice_lines SET amount_minor = 1 WHERE invoice_id = $1', [invoice?.id]),
      ).rejects.toThrow(/immutable/);
      await expect(database.query('DELETE FROM invoices WHERE id = $1', [invoice?.id])).rejects.toThrow(/finalized/);
    });
  }

  it('takes credits (units, then money) before invoicing the overage, to an exact balance', async () => {
    const plan = await proPlan();
    const team = await subscribedTeam({ plan, currency: 'USD', at: march });
    await database.transaction(async (tx) => {
      await grantCredits(tx, {
        teamId: team.id,
        pool: { metric: 'calls' },
        amount: 20_000n,
        source: 'operator',
        idempotencyKey: 'g1',
      });
      await grantCredits(tx, {
        teamId: team.id,
        pool: { currency: 'USD' },
        amount: 500n,
        source: 'operator',
        idempotencyKey: 'g2',
      });
    });
    await meter(team.id, 150_000, march, new Date(april.getTime() - 1));
    await closeBillingPeriod(database, { now: afterApril, provider: manual });
    const [invoice] = await listInvoices(database, team.id);
    // 50,000 over, 20,000 paid in call credits: 30,000 × $0.0005 = $15.00, $5.00 of it paid in credit.
    expect(invoice?.lines.map((line) => [line.kind, line.quantity, line.amountMinor])).toEqual([
      ['base_fee', 1n, 4900n],
      ['overage', 30_000n, 1500n],
      ['credit', 1n, -500n],
    ]);
    expect(invoice?.subtotalMinor).toBe(6400n);
    expect(invoice?.creditsAppliedMinor).toBe(500n);
    expect(invoice?.totalMinor).toBe(5900n);
    const balances = await database.query<{ pool: string; balance: string }>(
      'SELECT pool, balance::text AS balance FROM credit_balances WHERE team_id = $1 ORDER BY pool',
      [team.id],
    );
    expect(balances.rows).toEqual([
      { pool: 'USD', balance: '0' },
      { pool: 'calls', balance: '0' },
    ]);
  });

  it('marks a manual invoice paid (invoice.paid) and corrects it with a credit note, never by editing it', async () => {
    const plan = await proPlan();
    const team = await subscribedTeam({ plan, currency: 'USD', at: march });
    await closeBillingPeriod(database, { now: afterApril, provider: manual });
    const [invoice] = await listInvoices(database, team.id);
    expect(invoice?.totalMinor).toBe(4900n);
    const service = { database, provider: manual, graceDays: 7, logger, now: () => afterApril };
    const paid = await markInvoicePaid(service, { invoiceId: invoice?.id as string, actor: { actorLabel: 'op' } });
    expect(paid.invoice.status).toBe('paid');
    expect(
      (await markInvoicePaid(service, { invoiceId: invoice?.id as string, actor: { actorLabel: 'op' } })).changed,
    ).toBe(false);
    const events = await database.query<{ type: string }>(
      "SELECT type FROM webhook_events WHERE team_id = $1 AND type LIKE 'invoice.%' ORDER BY created_at",
      [team.id],
    );
    expect(events.rows.map((row) => row.type)).toEqual(['invoice.finalized', 'invoice.paid']);

    const note = await createCreditNote(database, {
      invoiceId: invoice?.id as string,
      amount: '10.00',
      reason: 'outage on March 3',
      actor: { actorLabel: 'op' },
    });
    expect(note.kind).toBe('credit_note');
    expect(note.totalMinor).toBe(-1000n);
    expect(note.correctsInvoiceId).toBe(invoice?.id);
    await expect(
      createCreditNote(database, {
        invoiceId: invoice?.id as string,
        amount: '39.01',
        reason: 'too much',
        actor: { actorLabel: 'op' },
      }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(
      createCreditNote(database, {
        invoiceId: invoice?.id as string,
        amount: '-1',
        reason: 'negative',
        actor: { actorLabel: 'op' },
      }),
    ).rejects.toMatchObject({ code: 'validation_failed' });
    expect(await listInvoices(database, team.id)).toHaveLength(2);
    const original = (await listInvoices(database, team.id)).find((row) => row.id === invoice?.id);
    expect(original?.totalMinor).toBe(4900n);
  });

  it('survives a crash after storing and after pushing half the items: one Stripe invoice, no duplicated items', async () => {
    const provider = createStripeBillingProvider(
      { secretKey: stripe.apiKey, apiBase: stripe.url, webhookSecret: stripe.webhookSecret },
      { maxNetworkRetries: 0 },
    );
    const plan = await proPlan();
    const team = await subscribedTeam({ plan, currency: 'USD', at: march });
    // A Stripe-collected subscription (its base fee is on Stripe's own subscription invoice) with a
    // customer, and a Tollgate-collected proration: two lines to push.
    await database.query("UPDATE subscriptions SET provider = 'stripe' WHERE team_id = $1", [team.id]);
    const sub = (
      await database.query<{ id: string; plan_id: string }>(
        'SELECT id, plan_id FROM subscriptions WHERE team_id = $1',
        [team.id],
      )
    ).rows[0];
    await database.query(
      `INSERT INTO subscription_prorations (subscription_id, team_id, from_plan_id, to_plan_id, currency, credit_minor, charge_minor,
         net_minor, period_start, period_end, changed_at, collected_by)
       VALUES ($1, $2, $3, $3, 'USD', 0, 1234, 1234, $4, $5, $6, 'tollgate')`,
      [sub?.id, team.id, sub?.plan_id, march, april, new Date('2026-03-15T00:00:00Z')],
    );
    await meter(team.id, 150_000, march, new Date(april.getTime() - 1));
    // The Stripe subscription's renewal moves the period on (as its event would).
    await database.query(
      'UPDATE subscriptions SET current_period_start = $2, current_period_end = $3 WHERE team_id = $1',
      [team.id, april, new Date('2026-05-01T00:00:00Z')],
    );

    // Crash 1: stored, not pushed.
    await expect(
      closeBillingPeriod(database, {
        now: afterApril,
        provider,
        afterStep: (step) => {
          if (step === 'stored') throw new Error('crash after storing');
        },
      }),
    ).rejects.toThrow('crash after storing');
    const [stored] = await listInvoices(database, team.id);
    expect(stored?.pushState).toBe('pending');
    expect(
      stripe
        .objects('invoice')
        .filter((row) => (row.metadata as Record<string, string>).tollgate_invoice_id === stored?.id),
    ).toHaveLength(0);

    // Crash 2: after the first of the two items.
    let items = 0;
    await expect(
      closeBillingPeriod(database, {
        now: afterApril,
        provider,
        afterStep: (step) => {
          if (step === 'item' && ++items === 1) throw new Error('crash after one item');
        },
      }),
    ).rejects.toThrow('crash after one item');

    // The rerun completes the push.
    const report = await closeBillingPeriod(database, { now: afterApril, provider });
    expect(report.pushFailed).toBe(0);
    const invoices = await listInvoices(database, team.id);
    expect(invoices).toHaveLength(1);
    const invoice = invoices[0];
    expect(invoice?.pushState).toBe('finalized');
    expect(invoice?.lines.map((line) => [line.kind, line.amountMinor])).toEqual([
      ['overage', 2500n],
      ['proration', 1234n],
    ]);
    const stripeInvoices = stripe
      .objects('invoice')
      .filter((row) => (row.metadata as Record<string, string>).tollgate_invoice_id === invoice?.id);
    expect(stripeInvoices).toHaveLength(1);
    expect(stripeInvoices[0]?.id).toBe(invoice?.providerInvoiceId);
    expect(stripeInvoices[0]?.status).not.toBe('draft');
    expect(stripeInvoices[0]?.amount_due).toBe(3734);
    const stripeItems = stripe.objects('invoiceitem').filter((row) => row.invoice === invoice?.providerInvoiceId);
    expect(stripeItems.map((row) => row.amount).sort()).toEqual([1234, 2500]);
    for (const line of invoice?.lines ?? []) {
      expect(stripe.idempotencyKeys).toContain(`tollgate:invoice-item:${line.id}`);
      const posts = stripe.requests.filter(
        (request) =>
          request.path === '/v1/invoiceitems' &&
          request.idempotencyKey === `tollgate:invoice-item:${line.id}` &&
          !request.replayed,
      );
      expect(posts).toHaveLength(1);
    }
  });
});

/*
 * Billing cycles and usage months (docs/billing.md): a subscription's periods are whole months from
 * its cycle anchor, never drifting, and the included quota is monthly: the same months the gateway,
 * quota status and usage alerts count in. Far-future dates keep other suites' lifecycle runs (at the
 * real now, on a shared database) away from these subscriptions.
 */
describe(`billing cycles and usage months (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  const at = (iso: string) => new Date(iso);
  const anchorOf = async (teamId: string) =>
    (
      await database.query<{ billing_anchor_at: Date }>('SELECT billing_anchor_at FROM teams WHERE id = $1', [teamId])
    ).rows[0]?.billing_anchor_at.toISOString();

  it('rates an annual period month by month against the monthly quota, from an anchor on the 31st', async () => {
    const plan = await proPlan();
    const start = at('2031-01-31T09:00:00Z');
    const team = await subscribedTeam({ plan, currency: 'USD', at: start, interval: 'year' });
    // Usage months from Jan 31: [Jan 31, Feb 28), [Feb 28, Mar 31), ..., [Dec 31, Jan 31).
    await meter(team.id, 120_000, start, at('2031-02-28T08:59:59Z'));
    await meter(team.id, 60_000, at('2031-02-28T09:00:00Z'), at('2031-03-31T08:59:59Z'));
    await meter(team.id, 110_000, at('2031-12-31T09:00:00Z'), at('2032-01-31T08:59:00Z'));
    await closeBillingPeriod(database, { now: at('2032-01-31T09:01:00Z'), provider: manual });
    const [invoice, ...others] = await listInvoices(database, team.id);
    expect(others).toHaveLength(0);
    expect(invoice?.periodStart.toISOString()).toBe(start.toISOString());
    expect(invoice?.periodEnd.toISOString()).toBe('2032-01-31T09:00:00.000Z');
    // 290,000 calls in the year but 100,000 included each month: 20,000 over in the first month and
    // 10,000 in the last, never 190,000 over a single quota.
    expect(invoice?.lines.map((line) => [line.kind, line.quantity, line.amountMinor])).toEqual([
      ['base_fee', 1n, 49_000n],
      ['overage', 20_000n, 1000n],
      ['overage', 10_000n, 500n],
    ]);
    expect(invoice?.lines[1]?.description).toContain('month from 2031-01-31 (1 of 12)');
    expect(invoice?.lines[2]?.description).toContain('month from 2031-12-31 (12 of 12)');
    expect(invoice?.totalMinor).toBe(50_500n);
    expect(await anchorOf(team.id)).toBe(start.toISOString());
  });

  it('renews monthly periods from the anchor without drift and invoices every period a late job passes', async () => {
    const plan = await proPlan();
    const start = at('2031-01-31T00:00:00Z');
    const team = await subscribedTeam({ plan, currency: 'USD', at: start });
    // The worker was away for two months: one run invoices Jan 31–Feb 28 and Feb 28–Mar 31.
    await closeBillingPeriod(database, { now: at('2031-04-02T00:00:00Z'), provider: manual });
    const invoices = (await listInvoices(database, team.id)).sort(
      (a, b) => a.periodStart.getTime() - b.periodStart.getTime(),
    );
    expect(invoices.map((invoice) => [invoice.periodStart.toISOString(), invoice.periodEnd.toISOString()])).toEqual([
      ['2031-01-31T00:00:00.000Z', '2031-02-28T00:00:00.000Z'],
      ['2031-02-28T00:00:00.000Z', '2031-03-31T00:00:00.000Z'],
    ]);
    expect(invoices.map((invoice) => invoice.totalMinor)).toEqual([4900n, 4900n]);
    const current = await database.query<{ current_period_start: Date; current_period_end: Date }>(
      "SELECT current_period_start, current_period_end FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'",
      [team.id],
    );
    expect(current.rows[0]?.current_period_start.toISOString()).toBe('2031-03-31T00:00:00.000Z');
    expect(current.rows[0]?.current_period_end.toISOString()).toBe('2031-04-30T00:00:00.000Z');
  });

  it('charges a period upgraded in its middle the fee it started with plus the proration, not the new fee twice', async () => {
    const plan = await proPlan();
    const bigger = `max-${tag()}`;
    await database.transaction((tx) =>
      createPlan(tx, {
        slug: bigger,
        name: 'Max',
        trial_days: 0,
        prices: [{ currency: 'USD', interval: 'month', amount: '98.00' }],
        included: { calls: 1_000_000 },
      }),
    );
    const start = at('2031-03-01T00:00:00Z');
    const team = await subscribedTeam({ plan, currency: 'USD', at: start });
    // 10 of March's 31 days left: credit 49.00 × 10/31 = 15.81, charge 98.00 × 10/31 = 31.61.
    const changed = await changeSubscriptionPlan(
      { database, provider: manual, graceDays: 7, logger, now: () => at('2031-03-22T00:00:00Z') },
      { team: { id: team.id, name: team.name }, plan: bigger, actor: { actorLabel: 'test' } },
    );
    expect(changed.kind).toBe('upgraded');
    await closeBillingPeriod(database, { now: at('2031-04-01T00:01:00Z'), provider: manual });
    const [invoice, ...others] = await listInvoices(database, team.id);
    expect(others).toHaveLength(0);
    expect(invoice?.lines.map((line) => [line.kind, line.amountMinor])).toEqual([
      ['base_fee', 4900n],
      ['proration', 3161n - 1581n],
    ]);
    expect(invoice?.totalMinor).toBe(4900n + 1580n);
    await markInvoicePaid(
      { database, provider: manual, graceDays: 7, logger, now: () => at('2031-04-02T00:00:00Z') },
      { invoiceId: invoice?.id as string, actor: { actorLabel: 'operator' } },
    );
    // April is billed at the new fee.
    await closeBillingPeriod(database, { now: at('2031-05-01T00:01:00Z'), provider: manual });
    const april = (await listInvoices(database, team.id)).find(
      (row) => row.periodStart.getTime() === at('2031-04-01T00:00:00Z').getTime(),
    );
    expect(april?.lines.map((line) => [line.kind, line.amountMinor])).toEqual([['base_fee', 9800n]]);
  });

  it("rates a Stripe period with the plan it had when our clock applies a downgrade before Stripe's renewal", async () => {
    const perCall = { model: 'per_unit' as const, unit_price: '0.001' };
    const planOf = async (name: string, amount: string, included: number) => {
      const slug = `${name.toLowerCase()}-${tag()}`;
      await database.transaction((tx) =>
        createPlan(tx, {
          slug,
          name,
          trial_days: 0,
          prices: [{ currency: 'USD', interval: 'month', amount }],
          included: { calls: included },
          overage_allowed: true,
          overage: { calls: { USD: perCall } },
        }),
      );
      return slug;
    };
    const big = await planOf('Big', '98.00', 100_000);
    const small = await planOf('Small', '19.00', 10_000);
    const team = await subscribedTeam({ plan: big, currency: 'USD', at: at('2033-01-01T00:00:00Z') });
    // Collected by Stripe: its renewal event, not our lifecycle, moves the period on.
    await database.query(
      "UPDATE subscriptions SET provider = 'stripe', provider_subscription_id = $2 WHERE team_id = $1",
      [team.id, `sub_${tag()}`],
    );
    const downgrade = await changeSubscriptionPlan(
      { database, provider: manual, graceDays: 7, logger, now: () => at('2033-01-20T00:00:00Z') },
      { team: { id: team.id, name: team.name }, plan: small, actor: { actorLabel: 'test' } },
    );
    expect(downgrade.kind).toBe('downgrade_scheduled');
    await meter(team.id, 50_000, at('2033-01-02T00:00:00Z'), at('2033-01-30T00:00:00Z'));
    // Our clock reaches the period end first: the smaller limits apply at once...
    await runSubscriptionLifecycle({ database, logger, now: () => at('2033-02-01T00:00:30Z') });
    const subscription = await getSubscription(database, team.id);
    expect(subscription?.plan.slug).toBe(small);
    // ...then Stripe's renewal event moves the period on.
    await database.query(
      "UPDATE subscriptions SET current_period_start = $2, current_period_end = $3 WHERE team_id = $1 AND status <> 'canceled'",
      [team.id, at('2033-02-01T00:00:00Z'), at('2033-03-01T00:00:00Z')],
    );
    await closeBillingPeriod(database, { now: at('2033-02-01T00:01:00Z'), provider: manual });
    const [january, ...others] = await listInvoices(database, team.id);
    expect(others).toHaveLength(0);
    // January had Big's 100,000 included calls: its 50,000 are no overage (Small's 10,000 would make 40,000).
    expect(january?.lines).toEqual([]);
    expect(january?.totalMinor).toBe(0n);
  });

  it('starts the paid cycle at the end of the trial: quota months and invoices follow it', async () => {
    const plan = await proPlan(14);
    const start = at('2031-03-20T00:00:00Z');
    const team = await subscribedTeam({ plan, currency: 'USD', at: start });
    expect(await anchorOf(team.id)).toBe(start.toISOString());
    const trialEnd = at('2031-04-03T00:00:00Z');
    await closeBillingPeriod(database, { now: at('2031-04-03T00:01:00Z'), provider: manual });
    // The team's quota months, which the gateway counts in, now start on the trial's end.
    expect(await anchorOf(team.id)).toBe(trialEnd.toISOString());
    // 150,000 calls in the first paid month, across the calendar month's end: 50,000 over.
    await meter(team.id, 150_000, trialEnd, at('2031-05-02T23:59:00Z'));
    await closeBillingPeriod(database, { now: at('2031-05-03T00:01:00Z'), provider: manual });
    const [invoice, ...others] = await listInvoices(database, team.id);
    expect(others).toHaveLength(0);
    expect(invoice?.periodStart.toISOString()).toBe(trialEnd.toISOString());
    expect(invoice?.periodEnd.toISOString()).toBe('2031-05-03T00:00:00.000Z');
    expect(invoice?.lines.map((line) => [line.kind, line.quantity, line.amountMinor])).toEqual([
      ['base_fee', 1n, 4900n],
      ['overage', 50_000n, 2500n],
    ]);
  });
});

/*
 * Without Stripe an operator marks invoices paid; an invoice left unpaid past its due date makes the
 * subscription past due, then unpaid (402 at the gateway) after the grace, and paying up every overdue
 * invoice makes it active again (docs/billing.md "Grace and 402").
 */
describe(`overdue manual invoices (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  const at = (iso: string) => new Date(iso);
  const state = async (teamId: string) => {
    const subscription = await getSubscription(database, teamId);
    const team = await database.query<{ payment_required: boolean }>(
      'SELECT payment_required FROM teams WHERE id = $1',
      [teamId],
    );
    return [subscription?.status, team.rows[0]?.payment_required];
  };
  const lifecycle = (now: Date) => runSubscriptionLifecycle({ database, logger, now: () => now, graceDays: 7 });
  const pay = (invoiceId: string, now: Date) =>
    markInvoicePaid(
      { database, provider: manual, graceDays: 7, logger, now: () => now },
      { invoiceId, actor: { actorLabel: 'operator' } },
    );

  it('is due after the payment terms; past it the subscription is past_due, then unpaid, and paying makes it active', async () => {
    const plan = await proPlan();
    const team = await subscribedTeam({ plan, currency: 'USD', at: at('2032-01-01T00:00:00Z') });
    await closeBillingPeriod(database, { now: at('2032-02-01T00:01:00Z'), provider: manual, paymentTermsDays: 14 });
    const [january] = await listInvoices(database, team.id);
    expect(january?.status).toBe('open');
    expect(january?.dueAt?.toISOString()).toBe('2032-02-15T00:01:00.000Z');

    await lifecycle(at('2032-02-15T00:00:00Z'));
    expect(await state(team.id)).toEqual(['active', false]);
    await lifecycle(at('2032-02-15T00:02:00Z'));
    expect(await state(team.id)).toEqual(['past_due', false]);
    const pastDue = await getSubscription(database, team.id);
    // The grace runs from the due date, not from when the job noticed.
    expect(pastDue?.pastDueAt?.toISOString()).toBe('2032-02-15T00:01:00.000Z');
    expect(pastDue?.graceEndsAt?.toISOString()).toBe('2032-02-22T00:01:00.000Z');
    await lifecycle(at('2032-02-22T00:02:00Z'));
    expect(await state(team.id)).toEqual(['unpaid', true]);

    await pay(january?.id as string, at('2032-02-23T00:00:00Z'));
    expect(await state(team.id)).toEqual(['active', false]);
  });

  it('stays past due while another invoice is overdue: paying one of two is not enough', async () => {
    const plan = await proPlan();
    const team = await subscribedTeam({ plan, currency: 'USD', at: at('2032-01-01T00:00:00Z') });
    // 40 days of terms: January's invoice (Feb 1) is due Mar 12, February's (Mar 1) Apr 10.
    await closeBillingPeriod(database, { now: at('2032-02-01T00:01:00Z'), provider: manual, paymentTermsDays: 40 });
    await closeBillingPeriod(database, { now: at('2032-03-01T00:01:00Z'), provider: manual, paymentTermsDays: 40 });
    const invoices = (await listInvoices(database, team.id)).sort(
      (a, b) => a.periodStart.getTime() - b.periodStart.getTime(),
    );
    expect(invoices.map((invoice) => invoice.dueAt?.toISOString())).toEqual([
      '2032-03-12T00:01:00.000Z',
      '2032-04-10T00:01:00.000Z',
    ]);
    // A job that only runs again on Apr 11 finds both overdue and the grace of the first long over.
    await lifecycle(at('2032-04-11T00:00:00Z'));
    expect(await state(team.id)).toEqual(['unpaid', true]);
    await pay(invoices[0]?.id as string, at('2032-04-11T01:00:00Z'));
    expect(await state(team.id)).toEqual(['unpaid', true]);
    await pay(invoices[1]?.id as string, at('2032-04-11T02:00:00Z'));
    expect(await state(team.id)).toEqual(['active', false]);
  });
});
