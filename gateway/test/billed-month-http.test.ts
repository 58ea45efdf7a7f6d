import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  closeBillingPeriod,
  createApi,
  createApiKey,
  createLogger,
  createManualBillingProvider,
  createMemoryUsageCounterStore,
  createPlan,
  createTeam,
  createUserWithPassword,
  type Database,
  flushUsage,
  listApiDefinitions,
  listen,
  listInvoices,
  loadTeamPolicy,
  openRedisUsageCounterStore,
  type RunningServer,
  runMigrations,
  subscribe,
  type UsageCounterStore,
} from '@tollgate/services';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  openTestDatabase,
  testCounterConfig,
  testRedisUrl,
  uniqueKey,
} from '@tollgate/services/testing';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { createKeyVerifier, type KeyVerifier } from '../src/keys/key-verifier.js';
import type { Limiter } from '../src/limits/limiter.js';
import { openLimiter } from '../src/limits/open-limiter.js';
import { createTeamPolicyCache, type TeamPolicyCache } from '../src/limits/team-policies.js';
import { createUsageRecorder, type UsageRecorder } from '../src/metering/usage-recorder.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

/*
 * Issue 5's simulated month, through the gateway's whole HTTP path: 150,000 calls with a real API key
 * reach a real upstream through the proxy, its key check, its limits and quota, and its usage
 * recorder; the flusher moves the counts into the rollups; the period close invoices them. The
 * period-close suite rates the same month through the recorder alone, on a controllable clock; this
 * one proves nothing between an HTTP call and an invoice line loses or adds a call.
 */

const logger = createLogger({ level: 'silent' });
const calls = 150_000;
let database: Database;
let dispose: () => Promise<void>;
let store: UsageCounterStore;
let upstream: Server;
let verifier: KeyVerifier;
let policies: TeamPolicyCache;
let limiter: Limiter;
let recorder: UsageRecorder;
let gateway: GatewayApp;
let gatewayServer: RunningServer;

beforeAll(async () => {
  const opened = await openTestDatabase();
  database = opened.value;
  dispose = opened.dispose;
  await runMigrations(database);
  store = testRedisUrl
    ? await openRedisUsageCounterStore(
        { driver: 'redis', url: testRedisUrl },
        { logger, keyPrefix: `${uniqueKey('billed-month')}:` },
      )
    : createMemoryUsageCounterStore();
  // The production limiter of each backend: leased blocks from Redis, or in process.
  limiter = await openLimiter(testCounterConfig(), { logger, keyPrefix: `${uniqueKey('billed-month')}:limits:` });
  upstream = createServer((_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  policies?.close();
  await gatewayServer?.close(1_000);
  await gateway?.close();
  await verifier?.close();
  await limiter?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await store?.close();
  await dispose?.();
});

describe(`a month billed from calls through the gateway (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  it('invoices 150,000 HTTP calls on Pro as the $49.00 base fee plus exactly 50,000 overage units = $25.00', {
    timeout: 300_000,
  }, async () => {
    const tag = randomBytes(3).toString('hex');
    const plan = `pro-http-${tag}`;
    const graduated = {
      model: 'graduated' as const,
      tiers: [
        { up_to: 1_000_000, unit_price: '0.0005' },
        { up_to: null, unit_price: '0.0003' },
      ],
    };
    await database.transaction((tx) =>
      createPlan(tx, {
        slug: plan,
        name: 'Pro',
        trial_days: 0,
        prices: [{ currency: 'USD', interval: 'month', amount: '49.00' }],
        included: { calls: 100_000 },
        overage_allowed: true,
        overage: { calls: { USD: graduated } },
        // No rate limit (a plan's default is 1,000 calls an hour): the quota alone decides.
        rate_limits: { per_hour: null },
      }),
    );
    const user = await database.transaction((tx) =>
      createUserWithPassword(tx, { email: `owner.${tag}@example.com`, password: 'billed month passphrase 1' }),
    );
    const team = await database.transaction((tx) => createTeam(tx, { name: `Team ${tag}`, creatorUserId: user.id }));
    // The period holds the real now, when the gateway stamps its calls.
    const periodStart = new Date(Date.now() - 3_600_000);
    const subscribed = await subscribe(
      { database, provider: createManualBillingProvider(), graceDays: 7, logger, now: () => periodStart },
      {
        team: { id: team.id, name: team.name },
        plan,
        interval: 'month',
        currency: 'USD',
        actor: { actorLabel: 'test' },
      },
    );
    expect(subscribed.kind).toBe('subscribed');
    if (subscribed.kind !== 'subscribed') return;
    await database.transaction((tx) =>
      createApi(tx, {
        slug: `metered-${tag}`,
        name: 'Metered',
        upstreams: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`],
      }),
    );
    const key = await database.transaction((tx) => createApiKey(tx, { teamId: team.id, name: 'load' }));

    verifier = createKeyVerifier({ database, logger });
    policies = createTeamPolicyCache({ load: (teamId) => loadTeamPolicy(database, teamId) });
    recorder = createUsageRecorder({ store, logger, flushIntervalMs: 1_000 });
    gateway = createGatewayApp({
      logger,
      trustProxy: false,
      routing: staticRouting(await listApiDefinitions(database)),
      keys: verifier,
      limits: { limiter, policies },
      usage: recorder,
    });
    gatewayServer = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });

    // 150,000 calls, 64 at a time over 16 kept-alive connections.
    const pool = new Pool(gatewayServer.url, { connections: 16 });
    const statuses = new Map<number, number>();
    let sent = 0;
    const worker = async () => {
      while (sent < calls) {
        sent++;
        const response = await pool.request({
          method: 'GET',
          path: `/metered-${tag}/things`,
          headers: { authorization: `Bearer ${key.key}` },
        });
        await response.body.dump();
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    await pool.close();
    expect(Object.fromEntries(statuses)).toEqual({ 200: calls });

    await recorder.close();
    await flushUsage({ store, database });
    const counted = await database.query<{ calls: string; overage: string }>(
      'SELECT sum(calls)::text AS calls, sum(overage_calls)::text AS overage FROM usage_day WHERE team_id = $1',
      [team.id],
    );
    // The gateway's own count of overage agrees with the invoice below.
    expect(counted.rows[0]).toEqual({ calls: String(calls), overage: '50000' });

    const end = subscribed.subscription.currentPeriodEnd;
    await closeBillingPeriod(database, {
      now: new Date(end.getTime() + 60_000),
      provider: createManualBillingProvider(),
    });
    const [invoice, ...others] = await listInvoices(database, team.id);
    expect(others).toHaveLength(0);
    expect(invoice?.periodStart.toISOString()).toBe(periodStart.toISOString());
    expect(invoice?.lines.map((line) => [line.kind, line.metric, line.quantity, line.amountMinor])).toEqual([
      ['base_fee', null, 1n, 4900n],
      ['overage', 'calls', 50_000n, 2500n],
    ]);
    expect(invoice?.totalMinor).toBe(7400n);
  });
});
