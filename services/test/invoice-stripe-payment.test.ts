import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualBillingProvider } from '../src/billing/billing-provider.js';
import { getInvoice, listInvoices } from '../src/billing/invoices.js';
import { closeBillingPeriod } from '../src/billing/period-close.js';
import { createStripeBillingProvider } from '../src/billing/stripe-billing-provider.js';
import { createStripeEventHandlers, processStripeEvents, storeStripeEvent } from '../src/billing/stripe-webhooks.js';
import { registerSubscriptionStripeHandlers } from '../src/billing/subscription-stripe-events.js';
import { getSubscription, markSubscriptionPastDue, subscribe } from '../src/billing/subscriptions.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { createLogger } from '../src/logging/logger.js';
import { createPlan } from '../src/plans/plan-catalog.js';
import type { Database } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { createTeam } from '../src/teams/teams.js';
import { expectedDatabaseDriver, openTestDatabase } from './support/backends.js';
import { type StripeServer, startStripeServer } from './support/stripe-server.js';

const logger = createLogger({ level: 'silent' });
let database: Database;
let dispose: () => Promise<void>;
let stripe: StripeServer;

beforeAll(async () => {
  const opened = await openTestDatabase();
  database = opened.value;
  dispose = opened.dispose;
  await runMigrations(database);
  stripe = await startStripeServer();
});
afterAll(async () => {
  await stripe?.close();
  await dispose?.();
});

const tag = () => randomBytes(3).toString('hex');

describe(`Stripe payment of the invoices we push (${expectedDatabaseDriver})`, () => {
  it('invoice.paid of our pushed invoice marks it paid once and pays the past-due subscription', async () => {
    const provider = createStripeBillingProvider(
      { secretKey: stripe.apiKey, apiBase: stripe.url, webhookSecret: stripe.webhookSecret },
      { maxNetworkRetries: 0 },
    );
    const slug = `metered-${tag()}`;
    await database.transaction((tx) =>
      createPlan(tx, {
        slug,
        name: 'Metered',
        trial_days: 0,
        prices: [{ currency: 'USD', interval: 'month', amount: '10.00' }],
      }),
    );
    const user = await database.transaction((tx) =>
      createUserWithPassword(tx, { email: `o.${tag()}@example.com`, password: 'stripe invoice passphrase 1' }),
    );
    const team = await database.transaction((tx) => createTeam(tx, { name: `T ${tag()}`, creatorUserId: user.id }));
    const march = new Date('2026-03-01T00:00:00Z');
    const april = new Date('2026-04-01T00:00:00Z');
    const service = { database, provider, graceDays: 7, logger, now: () => march };
    await subscribe(
      { ...service, provider: createManualBillingProvider() },
      {
        team: { id: team.id, name: team.name },
        plan: slug,
        interval: 'month',
        currency: 'USD',
        actor: { actorLabel: 't' },
      },
    );
    const sub = (
      await database.query<{ id: string; plan_id: string }>(
        'SELECT id, plan_id FROM subscriptions WHERE team_id = $1',
        [team.id],
      )
    ).rows[0];
    // Stripe-collected, with a Tollgate-collected proration to invoice; Stripe renews it into April.
    await database.query("UPDATE subscriptions SET provider = 'stripe' WHERE id = $1", [sub?.id]);
    await database.query(
      `INSERT INTO subscription_prorations (subscription_id, team_id, from_plan_id, to_plan_id, currency, credit_minor, charge_minor,
         net_minor, period_start, period_end, changed_at, collected_by)
       VALUES ($1, $2, $3, $3, 'USD', 0, 777, 777, $4, $5, $6, 'tollgate')`,
      [sub?.id, team.id, sub?.plan_id, march, april, new Date('2026-03-10T00:00:00Z')],
    );
    await database.query('UPDATE subscriptions SET current_period_start = $2, current_period_end = $3 WHERE id = $1', [
      sub?.id,
      april,
      new Date('2026-05-01T00:00:00Z'),
    ]);
    await closeBillingPeriod(database, { now: new Date('2026-04-01T00:01:00Z'), provider });
    const [invoice] = await listInvoices(database, team.id);
    expect(invoice?.pushState).toBe('finalized');
    expect(invoice?.totalMinor).toBe(777n);
    await markSubscriptionPastDue({ ...service, now: () => new Date() }, { teamId: team.id });
    expect((await getSubscription(database, team.id))?.status).toBe('past_due');

    const handlers = createStripeEventHandlers();
    registerSubscriptionStripeHandlers(handlers, { provider, graceDays: 7, database });
    await stripe.payInvoice(invoice?.providerInvoiceId as string);
    const paidEvent = stripe.events.find(
      (event) => event.type === 'invoice.paid' && event.data.object.id === invoice?.providerInvoiceId,
    );
    expect(paidEvent).toBeDefined();
    // Delivered twice: processed once.
    await storeStripeEvent(database, paidEvent as unknown as Stripe.Event);
    await storeStripeEvent(database, paidEvent as unknown as Stripe.Event);
    await processStripeEvents({ database, handlers, logger });
    const paid = await getInvoice(database, invoice?.id as string);
    expect(paid.status).toBe('paid');
    expect((await getSubscription(database, team.id))?.status).toBe('active');
    const events = await database.query<{ type: string }>(
      "SELECT type FROM webhook_events WHERE team_id = $1 AND type LIKE 'invoice.%' ORDER BY created_at",
      [team.id],
    );
    expect(events.rows.map((row) => row.type)).toEqual(['invoice.finalized', 'invoice.paid']);
  });
});
