import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { closeBillingPeriod } from '../src/billing/period-close.js';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents } from '../src/billing/stripe-webhooks.js';
import { migratePlanSubscriptions } from '../src/billing/subscription-migration.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import { runSubscriptionLifecycle, systemActor } from '../src/billing/subscriptions.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import { loadTeamPolicy } from '../src/plans/team-policy.js';
import { createMemoryTeamPolicyEvents, type TeamPolicyEvent } from '../src/plans/team-policy-events.js';
import { callApi, type Json, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

type Account = SignedInAccount;

/** One API with its accounts, plans and teams. */
function harness() {
  const h = {
    api: undefined as unknown as TestApi,
    account: (label: string, installationRole: 'admin' | 'member' = 'member') =>
      signUp(h.api, label, { installationRole }),
    call: (who: Account, method: string, path: string, body?: unknown) => callApi(h.api, who, method, path, body),
    async team(owner: Account): Promise<{ id: string; slug: string }> {
      const created = await h.call(owner, 'POST', '/v1/teams', { name: `Team ${randomBytes(3).toString('hex')}` });
      expect(created.status).toBe(201);
      return { id: created.body.id, slug: created.body.slug };
    },
    /** Version 1 of a new plan with a monthly USD price (and EUR when given). */
    async plan(label: string, input: { monthly: string; eur?: string; trialDays?: number }): Promise<string> {
      const slug = `${label}-${randomBytes(3).toString('hex')}`;
      await h.api.database.transaction((tx) =>
        createPlan(tx, {
          slug,
          name: label,
          trial_days: input.trialDays ?? 0,
          prices: [
            { currency: 'USD', interval: 'month', amount: input.monthly },
            ...(input.eur ? [{ currency: 'EUR' as const, interval: 'month' as const, amount: input.eur }] : []),
          ],
        }),
      );
      return slug;
    },
    async planId(slug: string, version: number): Promise<string> {
      const result = await h.api.database.query<{ id: string }>(
        'SELECT id FROM plans WHERE slug = $1 AND version = $2',
        [slug, version],
      );
      return result.rows[0]?.id as string;
    },
    /** A live manual subscription written directly, with a period the test chooses. */
    async subscription(
      teamId: string,
      planId: string,
      input: { amountMinor: number; start: Date; end: Date; status?: string; currency?: string },
    ): Promise<string> {
      const inserted = await h.api.database.query<{ id: string }>(
        `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start,
           current_period_end, trial_ends_at, amount_minor)
         VALUES ($1, $2, $3, $4, 'month', $5, $6, $7, $8) RETURNING id`,
        [
          teamId,
          planId,
          input.status ?? 'active',
          input.currency ?? 'USD',
          input.start,
          input.end,
          input.status === 'trialing' ? input.end : null,
          String(input.amountMinor),
        ],
      );
      return inserted.rows[0]?.id as string;
    },
    /** Everything a migration writes, to prove a refused or dry one wrote nothing. */
    async written() {
      const rows = async (sql: string) => (await h.api.database.query(sql)).rows;
      return {
        subscriptions: await rows(
          'SELECT id, plan_id, amount_minor, pending_plan_id, pending_change_at FROM subscriptions ORDER BY id',
        ),
        prorations: await rows('SELECT count(*)::int AS n FROM subscription_prorations'),
        audit: await rows("SELECT count(*)::int AS n FROM audit_log WHERE outcome = 'success'"),
        events: await rows('SELECT count(*)::int AS n FROM webhook_events'),
      };
    },
    async audit(action: string, filter: { teamId?: string; targetId?: string } = {}) {
      const result = await h.api.database.query<{ details: Json }>(
        `SELECT details FROM audit_log WHERE action = $1 AND ($2::uuid IS NULL OR team_id = $2)
           AND ($3::text IS NULL OR target_id = $3) ORDER BY seq`,
        [action, filter.teamId ?? null, filter.targetId ?? null],
      );
      return result.rows.map((row) => (typeof row.details === 'string' ? JSON.parse(row.details) : row.details));
    },
  };
  return h;
}

const service = (database: TestApi['database'], now: () => Date) => ({
  database,
  provider: createManualBillingProvider(),
  graceDays: 7,
  logger: silentLogger(),
  now,
});

describe(`plan migration with the manual provider (${expectedDatabaseDriver})`, () => {
  const h = harness();
  const policyEvents = createMemoryTeamPolicyEvents();
  const heard: TeamPolicyEvent[] = [];
  let operator: Account;
  let owner: Account;

  beforeAll(async () => {
    policyEvents.subscribe((event) => heard.push(event));
    h.api = await startTestApi({ teamPolicyEvents: policyEvents });
    operator = await h.account('operator', 'admin');
    owner = await h.account('owner');
  });
  afterAll(() => h.api?.dispose());

  it('moves subscribers at their period end: a dry run writes nothing, a rerun moves nothing more, the renewal applies it', async () => {
    const slug = await h.plan('growth', { monthly: '10.00', eur: '9.00' });
    const usd = await h.team(owner);
    const eur = await h.team(owner);
    expect((await h.call(owner, 'POST', `/v1/teams/${usd.slug}/subscription`, { plan: slug })).status).toBe(201);
    expect(
      (await h.call(owner, 'POST', `/v1/teams/${eur.slug}/subscription`, { plan: slug, currency: 'EUR' })).status,
    ).toBe(201);
    // Version 2 costs more and drops EUR; both teams stay on version 1.
    const updated = await h.call(operator, 'PATCH', `/v1/plans/${slug}`, {
      prices: [{ currency: 'USD', interval: 'month', amount: '12.00' }],
    });
    expect(updated.body).toMatchObject({ new_version: true, plan: { version: 2 } });
    const usdSub = (await h.call(owner, 'GET', `/v1/teams/${usd.slug}/subscription`)).body;
    const eurSub = (await h.call(owner, 'GET', `/v1/teams/${eur.slug}/subscription`)).body;

    const before = await h.written();
    const dry = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, { dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({
      run_id: null,
      plan: slug,
      from_versions: [1],
      to_version: 2,
      at: 'period_end',
      dry_run: true,
      migrated: [
        {
          subscription_id: usdSub.id,
          team_id: usd.id,
          from_version: 1,
          to_version: 2,
          currency: 'USD',
          at: usdSub.current_period_end,
        },
      ],
      skipped: [{ subscription_id: eurSub.id, team_id: eur.id, from_version: 1, reason: 'price_not_offered' }],
    });
    expect(dry.body.skipped[0].message).toMatch(/no monthly price in EUR/);
    expect(await h.written()).toEqual(before);

    heard.length = 0;
    const run = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, {});
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ dry_run: false, migrated: dry.body.migrated, skipped: dry.body.skipped });
    expect(run.body.run_id).toMatch(/^[0-9a-f-]{36}$/);
    const scheduled = (await h.call(owner, 'GET', `/v1/teams/${usd.slug}/subscription`)).body;
    expect(scheduled).toMatchObject({
      plan_version: 1,
      amount_minor: 1000,
      pending_change: { plan: slug, plan_version: 2, amount_minor: 1200, at: usdSub.current_period_end },
    });
    expect(await h.audit('subscription.migration_scheduled', { teamId: usd.id })).toEqual([
      expect.objectContaining({ run_id: run.body.run_id, from_version: 1, to_version: 2, at: 'period_end' }),
    ]);
    expect(await h.audit('plan.migrated', { targetId: await h.planId(slug, 2) })).toEqual([
      expect.objectContaining({ run_id: run.body.run_id, migrated: 1, skipped: 1, to_version: 2 }),
    ]);
    const webhook = await h.api.database.query<{ payload: Json }>(
      "SELECT payload FROM webhook_events WHERE team_id = $1 AND type = 'subscription.updated' ORDER BY created_at DESC LIMIT 1",
      [usd.id],
    );
    expect(JSON.stringify(webhook.rows[0]?.payload)).toContain('migration_scheduled');
    expect(heard).toContainEqual({ type: 'invalidate', teamId: usd.id });
    // The EUR subscription was not touched.
    expect((await h.call(owner, 'GET', `/v1/teams/${eur.slug}/subscription`)).body).toMatchObject({
      plan_version: 1,
      pending_change: null,
    });

    // Running it again moves nothing more and writes nothing.
    const settled = await h.written();
    const again = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, {});
    expect(again.body.migrated).toEqual([]);
    expect(again.body.skipped.map((s: Json) => [s.subscription_id, s.reason])).toEqual([
      [usdSub.id, 'already_scheduled'],
      [eurSub.id, 'price_not_offered'],
    ]);
    expect(await h.written()).toEqual(settled);

    // The renewal at the period end moves the team onto version 2 (limits and fee).
    const end = new Date(usdSub.current_period_end).getTime();
    await runSubscriptionLifecycle(service(h.api.database, () => new Date(end - 1000)));
    expect((await h.call(owner, 'GET', `/v1/teams/${usd.slug}/subscription`)).body.plan_version).toBe(1);
    await runSubscriptionLifecycle(service(h.api.database, () => new Date(end + 1000)));
    const renewed = (await h.call(owner, 'GET', `/v1/teams/${usd.slug}/subscription`)).body;
    expect(renewed).toMatchObject({
      plan: slug,
      plan_version: 2,
      amount_minor: 1200,
      pending_change: null,
      current_period_start: usdSub.current_period_end,
    });
    expect(await h.audit('subscription.migrated', { teamId: usd.id })).toEqual([
      expect.objectContaining({ from_version: 1, plan_version: 2 }),
    ]);
    expect((await loadTeamPolicy(h.api.database, usd.id))?.planSlug).toBe(slug);
    const onV2 = await h.api.database.query('SELECT plan_id FROM subscriptions WHERE id = $1', [usdSub.id]);
    expect(onV2.rows[0]).toEqual({ plan_id: await h.planId(slug, 2) });
  });

  it('moves now with exact proration; a trial is not prorated; a cheaper version credits and the period close bills the net', async () => {
    const slug = await h.plan('scale', { monthly: '30.00' });
    const v1 = await h.planId(slug, 1);
    const start = new Date('2026-04-01T00:00:00Z');
    const end = new Date('2026-05-01T00:00:00Z');
    const paying = await h.team(owner);
    const trialing = await h.team(owner);
    const payingSub = await h.subscription(paying.id, v1, { amountMinor: 3000, start, end });
    const trialSub = await h.subscription(trialing.id, v1, { amountMinor: 3000, start, end, status: 'trialing' });
    const v2 = await h.call(operator, 'PATCH', `/v1/plans/${slug}`, {
      prices: [{ currency: 'USD', interval: 'month', amount: '60.00' }],
    });
    expect(v2.body.plan.version).toBe(2);
    // 10 of the 30 days left: credit 30.00 × 10/30, charge 60.00 × 10/30.
    const now = new Date('2026-04-21T00:00:00Z');
    const result = await migratePlanSubscriptions(
      service(h.api.database, () => now),
      { plan: slug, at: 'now', dryRun: false, actor: systemActor },
    );
    expect(result.skipped).toEqual([]);
    // Subscriptions written in the same millisecond come in either order.
    expect(result.migrated).toHaveLength(2);
    expect(result.migrated).toEqual(
      expect.arrayContaining([
        {
          subscriptionId: payingSub,
          teamId: paying.id,
          fromVersion: 1,
          toVersion: 2,
          currency: 'USD',
          at: now,
          proration: { creditMinor: 1000, chargeMinor: 2000, netMinor: 1000 },
        },
        {
          subscriptionId: trialSub,
          teamId: trialing.id,
          fromVersion: 1,
          toVersion: 2,
          currency: 'USD',
          at: now,
          proration: null,
        },
      ]),
    );
    const rows = await h.api.database.query<{ id: string; plan_id: string; amount_minor: string }>(
      'SELECT id, plan_id, amount_minor::text AS amount_minor FROM subscriptions WHERE id = ANY($1::uuid[]) ORDER BY id',
      [[payingSub, trialSub]],
    );
    const v2Id = await h.planId(slug, 2);
    expect(rows.rows.map((row) => [row.plan_id, row.amount_minor])).toEqual([
      [v2Id, '6000'],
      [v2Id, '6000'],
    ]);
    const prorations = await h.api.database.query(
      `SELECT credit_minor::text, charge_minor::text, net_minor::text, collected_by FROM subscription_prorations
       WHERE subscription_id = ANY($1::uuid[])`,
      [[payingSub, trialSub]],
    );
    expect(prorations.rows).toEqual([
      { credit_minor: '1000', charge_minor: '2000', net_minor: '1000', collected_by: 'tollgate' },
    ]);
    expect(await h.audit('subscription.migrated', { teamId: paying.id })).toEqual([
      expect.objectContaining({
        from_version: 1,
        to_version: 2,
        at: 'now',
        proration: { creditMinor: 1000, chargeMinor: 2000, netMinor: 1000 },
      }),
    ]);

    // A cheaper version 3: the net is a credit (negative), billed on the period's invoice.
    const cheaper = await h.call(operator, 'PATCH', `/v1/plans/${slug}`, {
      prices: [{ currency: 'USD', interval: 'month', amount: '15.00' }],
    });
    expect(cheaper.body.plan.version).toBe(3);
    const later = new Date('2026-04-26T00:00:00Z');
    const down = await migratePlanSubscriptions(
      service(h.api.database, () => later),
      { plan: slug, fromVersion: 2, at: 'now', dryRun: false, actor: systemActor },
    );
    // 5 of 30 days left: credit 60.00 × 5/30 = 10.00, charge 15.00 × 5/30 = 2.50.
    expect(down.migrated.find((entry) => entry.subscriptionId === payingSub)?.proration).toEqual({
      creditMinor: 1000,
      chargeMinor: 250,
      netMinor: -750,
    });
    await closeBillingPeriod(h.api.database, {
      now: new Date(end.getTime() + 1000),
      provider: createManualBillingProvider(),
      logger: silentLogger(),
    });
    const invoice = await h.api.database.query<{ id: string; total_minor: string; status: string }>(
      `SELECT id, total_minor::text AS total_minor, status FROM invoices WHERE subscription_id = $1 AND period_start = $2`,
      [payingSub, start],
    );
    const lines = await h.api.database.query<{ kind: string; amount_minor: string }>(
      'SELECT kind, amount_minor::text AS amount_minor FROM invoice_lines WHERE invoice_id = $1 ORDER BY position',
      [invoice.rows[0]?.id],
    );
    // The period is charged the fee it started with, and each move by its proration: 20 days at
    // 30.00, 5 at 60.00 and 5 at 15.00 = 20.00 + 10.00 + 2.50.
    expect(lines.rows).toEqual([
      { kind: 'base_fee', amount_minor: '3000' },
      { kind: 'proration', amount_minor: '1000' },
      { kind: 'proration', amount_minor: '-750' },
    ]);
    expect(invoice.rows[0]).toMatchObject({ total_minor: '3250', status: 'open' });
  });

  it('refuses non-operators, unknown plans, versions that do not exist or do not move forward, and archived plans, writing nothing', async () => {
    const slug = await h.plan('refused', { monthly: '5.00' });
    const team = await h.team(owner);
    await h.subscription(team.id, await h.planId(slug, 1), {
      amountMinor: 500,
      start: new Date('2026-04-01T00:00:00Z'),
      end: new Date('2026-05-01T00:00:00Z'),
    });
    await h.call(operator, 'PATCH', `/v1/plans/${slug}`, {
      prices: [{ currency: 'USD', interval: 'month', amount: '6.00' }],
    });
    const before = await h.written();
    const member = await h.call(owner, 'POST', `/v1/plans/${slug}/migrate`, {});
    expect([member.status, member.body.error.code]).toEqual([403, 'forbidden']);
    const unknown = await h.call(operator, 'POST', '/v1/plans/no-such-plan-here/migrate', {});
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'not_found']);
    for (const body of [
      { to_version: 9 },
      { from_version: 7 },
      { from_version: 2, to_version: 1 },
      { from_version: 2, to_version: 2 },
      { to_version: 1 },
      { to_version: 0 },
      { at: 'tomorrow' },
      { dry_run: 'yes' },
      { to_verison: 2 },
    ]) {
      const refused = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, body);
      expect([JSON.stringify(body), refused.status, refused.body.error.code]).toEqual([
        JSON.stringify(body),
        400,
        'validation_failed',
      ]);
    }
    expect(await h.written()).toEqual(before);
    expect((await h.call(operator, 'POST', `/v1/plans/${slug}/archive`)).status).toBe(200);
    const afterArchive = await h.written();
    const archived = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, {});
    expect([archived.status, archived.body.error.code]).toEqual([409, 'plan_archived']);
    expect(await h.written()).toEqual(afterArchive);
  });

  it('skips unpaid subscriptions and those with a pending change to another plan', async () => {
    const slug = await h.plan('mixed', { monthly: '20.00' });
    const other = await h.plan('other', { monthly: '5.00' });
    const v1 = await h.planId(slug, 1);
    const period = { start: new Date('2026-04-01T00:00:00Z'), end: new Date('2026-05-01T00:00:00Z') };
    const unpaidTeam = await h.team(owner);
    const unpaid = await h.subscription(unpaidTeam.id, v1, { amountMinor: 2000, ...period, status: 'unpaid' });
    const pendingTeam = await h.team(owner);
    const pending = await h.subscription(pendingTeam.id, v1, { amountMinor: 2000, ...period });
    await h.api.database.query(
      'UPDATE subscriptions SET pending_plan_id = $2, pending_amount_minor = 500, pending_change_at = current_period_end WHERE id = $1',
      [pending, await h.planId(other, 1)],
    );
    await h.call(operator, 'PATCH', `/v1/plans/${slug}`, { name: 'Mixed 2' });
    const run = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, { at: 'now' });
    expect(run.status).toBe(200);
    expect(run.body.migrated).toEqual([]);
    expect(new Map(run.body.skipped.map((s: Json) => [s.subscription_id, s.reason]))).toEqual(
      new Map([
        [unpaid, 'payment_required'],
        [pending, 'pending_change'],
      ]),
    );
    // Nothing moved: no summary entry either.
    expect(await h.audit('plan.migrated', { targetId: await h.planId(slug, 2) })).toEqual([]);
  });

  it('shows the endpoint in the OpenAPI document', async () => {
    const document = (await h.call(owner, 'GET', '/v1/openapi.json')).body;
    const operation = document.paths['/v1/plans/{plan}/migrate']?.post;
    expect(operation?.operationId).toBe('migratePlanSubscriptions');
    expect(JSON.stringify(operation)).toContain('dry_run');
  });
});

describe(`plan migration through Stripe (${expectedDatabaseDriver})`, () => {
  const h = harness();
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  let stripe: StripeServer;
  let operator: Account;
  let owner: Account;
  const handlers = createStripeEventHandlers();

  const processEvents = async () => {
    await stripe.settled();
    return processStripeEvents({ database: h.api.database, handlers, logger: silentLogger() });
  };

  beforeAll(async () => {
    stripe = await startStripeServer({ webhookSecret });
    h.api = await startTestApi({
      stripeWebhookSecret: webhookSecret,
      stripe: { secretKey: stripe.apiKey, apiBase: stripe.url },
    });
    stripe.webhookUrl = `${h.api.server.url}/v1/stripe/webhook`;
    registerSubscriptionStripeHandlers(handlers, {
      provider: createStripeBillingProvider(
        { secretKey: stripe.apiKey, webhookSecret, apiBase: stripe.url },
        { maxNetworkRetries: 0 },
      ),
      graceDays: 7,
    });
    operator = await h.account('operator', 'admin');
    owner = await h.account('owner');
  });
  afterAll(async () => {
    await stripe?.close();
    await h.api?.dispose();
  });

  it("changes the Stripe subscription's price with a run-derived idempotency key; the renewal moves our row", async () => {
    const slug = await h.plan('metered', { monthly: '10.00' });
    const team = await h.team(owner);
    const started = await h.call(owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: slug });
    expect(started.status).toBe(202);
    const session = stripe.objects('checkout.session').find((s) => s.url === started.body.checkout_url);
    await stripe.completeCheckout(session?.id as string);
    await processEvents();
    const subscription = (await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body;
    expect(subscription).toMatchObject({ plan_version: 1, provider: 'stripe', amount_minor: 1000 });
    await h.call(operator, 'PATCH', `/v1/plans/${slug}`, {
      prices: [{ currency: 'USD', interval: 'month', amount: '12.50' }],
    });

    const run = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, {});
    expect(run.status).toBe(200);
    expect(run.body.migrated).toHaveLength(1);
    const providerId = (
      await h.api.database.query<{ provider_subscription_id: string }>(
        'SELECT provider_subscription_id FROM subscriptions WHERE id = $1',
        [subscription.id],
      )
    ).rows[0]?.provider_subscription_id as string;
    const key = `tollgate:subscription-change:${run.body.run_id}:${subscription.id}`;
    const update = stripe.requests.find(
      (r) => r.method === 'POST' && r.path === `/v1/subscriptions/${providerId}` && r.idempotencyKey === key,
    );
    expect(update?.body).toMatchObject({
      proration_behavior: 'none',
      items: [{ price_data: { unit_amount: '1250', currency: 'usd' } }],
    });
    const atStripe = stripe.object(providerId) as Json;
    expect(atStripe.items.data[0].price.unit_amount).toBe(1250);
    expect(atStripe.metadata.tollgate_plan_id).toBe(await h.planId(slug, 2));
    // Until the renewal the team keeps version 1, its limits and fee.
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      plan_version: 1,
      pending_change: { plan_version: 2, amount_minor: 1250 },
    });
    await stripe.advanceClock(32 * 86_400);
    await processEvents();
    expect((await h.call(owner, 'GET', `/v1/teams/${team.slug}/subscription`)).body).toMatchObject({
      plan_version: 2,
      amount_minor: 1250,
      pending_change: null,
    });
    // Nothing more to do.
    const again = await h.call(operator, 'POST', `/v1/plans/${slug}/migrate`, {});
    expect(again.body).toMatchObject({ migrated: [], skipped: [] });
  });
});
