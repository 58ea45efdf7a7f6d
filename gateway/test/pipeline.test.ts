import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createApi,
  createApiKey,
  createLogger,
  createMemoryUsageCounterStore,
  flushUsage,
  listApiDefinitions,
  listen,
  loadTeamPolicy,
  type RunningServer,
  type UsageCounterStore,
} from '@tollgate/services';
import { openTestDatabase, startTcpProxy, testRedisUrl } from '@tollgate/services/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { createKeyVerifier, type KeyVerifier } from '../src/keys/key-verifier.js';
import { createLeasingLimiter } from '../src/limits/leasing-limiter.js';
import type { Limiter } from '../src/limits/limiter.js';
import { createMemoryLimiter } from '../src/limits/memory-limiter.js';
import { createRedisLimiter } from '../src/limits/redis-limiter.js';
import { createTeamPolicyCache } from '../src/limits/team-policies.js';
import { createUsageRecorder, type UsageRecorder } from '../src/metering/usage-recorder.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

const logger = createLogger({ level: 'silent' });
let db: Awaited<ReturnType<typeof openTestDatabase>>;
let upstream: Server;
let upstreamUrl = '';
let gateway: GatewayApp;
let server: RunningServer;
let verifier: KeyVerifier;
let limiter: Limiter;
let fallback: Limiter;
let redis: Redis | undefined;
let usageStore: UsageCounterStore;
let recorder: UsageRecorder;
const keys: Record<string, string> = {};
const teams: Record<string, string> = {};
/** A limiter whose Redis does not answer: for the failure policies. */
let deadRedis: Redis;
let deadGateway: GatewayApp;
let deadServer: RunningServer;

async function team(
  slug: string,
  plan: { second?: number; quota?: number | null; overage?: boolean; paymentRequired?: boolean },
) {
  const created = await db.value.query<{ id: string }>(
    `INSERT INTO teams (name, slug, payment_required) VALUES ($1, $1, $2) RETURNING id`,
    [slug, plan.paymentRequired ?? false],
  );
  const teamId = created.rows[0]?.id as string;
  const planRow = await db.value.query<{ id: string }>(
    `INSERT INTO plans (slug, name, rate_limit_per_second, rate_limit_per_hour, monthly_call_quota, overage_allowed)
     VALUES ($1, $1, $2, 1000, $3, $4) RETURNING id`,
    [`plan-${slug}`, plan.second ?? null, plan.quota ?? null, plan.overage ?? false],
  );
  await db.value.query(
    `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
     VALUES ($1, $2, 'active', 'USD', 'month', now(), now() + interval '1 month')`,
    [teamId, planRow.rows[0]?.id],
  );
  const key = await db.value.transaction((tx) => createApiKey(tx, { teamId, name: slug }));
  teams[slug] = teamId;
  keys[slug] = key.key;
}

function send(
  target: RunningServer,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const url = new URL(target.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    if (options.chunked && options.body) {
      req.write(options.body);
      req.end();
    } else req.end(options.body);
  });
}

const call = (slug: string, path = '/echo/x', extra: Parameters<typeof send>[2] = {}) =>
  send(server, path, { ...extra, headers: { authorization: `Bearer ${keys[slug]}`, ...(extra.headers ?? {}) } });

beforeAll(async () => {
  db = await openTestDatabase();
  const { runMigrations } = await import('@tollgate/services');
  await runMigrations(db.value);
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  await db.value.transaction(async (tx) => {
    await createApi(tx, { slug: 'echo', name: 'Echo', upstreams: [upstreamUrl] });
    await createApi(tx, {
      slug: 'browser',
      name: 'Browser',
      upstreams: [upstreamUrl],
      plugins: [
        { name: 'cors', config: { origins: ['https://app.example.com'] } },
        { name: 'request-size-limit', config: { max_bytes: 16 } },
      ],
    });
    await createApi(tx, { slug: 'open', name: 'Open', upstreams: [upstreamUrl], failurePolicy: 'fail-open' });
  });
  await team('steady', { second: 3, quota: null });
  await team('capped', { quota: 2 });
  await team('overage', { quota: 1, overage: true });
  await team('unpaid', { paymentRequired: true });

  const routing = staticRouting(await listApiDefinitions(db.value));
  verifier = createKeyVerifier({ database: db.value, logger });
  if (testRedisUrl) {
    redis = new Redis(testRedisUrl, { keyPrefix: `tgtest:${Date.now()}:` });
    // What openLimiter runs on Redis: leases of units, checked here through the whole request path.
    limiter = createLeasingLimiter(redis);
  } else limiter = createMemoryLimiter();
  fallback = createMemoryLimiter();
  usageStore = createMemoryUsageCounterStore();
  recorder = createUsageRecorder({ store: usageStore, logger, flushIntervalMs: 50 });
  const policies = createTeamPolicyCache({ load: (teamId) => loadTeamPolicy(db.value, teamId) });
  gateway = createGatewayApp({
    logger,
    trustProxy: false,
    routing,
    keys: verifier,
    limits: { limiter, fallback, policies },
    usage: recorder,
  });
  server = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });

  // Nothing listens on port 9: every limiter command fails at once.
  deadRedis = new Redis({
    host: '127.0.0.1',
    port: 9,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    retryStrategy: () => null,
  });
  deadRedis.on('error', () => {});
  deadGateway = createGatewayApp({
    logger,
    trustProxy: false,
    routing,
    keys: verifier,
    limits: { limiter: createLeasingLimiter(deadRedis), fallback: createMemoryLimiter(), policies },
  });
  deadServer = await listen(deadGateway.app.callback(), { host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close(1_000);
  await deadServer?.close(1_000);
  await gateway?.close();
  await deadGateway?.close();
  await recorder?.close();
  await verifier?.close();
  await limiter?.close();
  await fallback?.close();
  redis?.disconnect();
  deadRedis?.disconnect();
  upstream?.closeAllConnections();
  upstream?.close();
  await db?.dispose();
});

describe('the request path: key, limits, plugins, proxy, usage', () => {
  it('serves a keyed call with the RateLimit headers of its windows', async () => {
    const answer = await call('steady');
    expect(answer.status).toBe(200);
    expect(answer.headers['ratelimit-policy']).toBe('"team-second";q=3;w=1, "team-hour";q=1000;w=3600');
    expect(answer.headers.ratelimit).toMatch(/^"team-second";r=\d;t=\d+, "team-hour";r=\d+;t=\d+$/);
    expect((await send(server, '/echo/x')).status).toBe(401);
  });

  it('refuses with 429 rate_limited and Retry-After past the per-second limit, counting no refusal', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const answers = await Promise.all(Array.from({ length: 6 }, () => call('steady')));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
    const refused = answers.find((a) => a.status === 429);
    expect(JSON.parse(refused?.body ?? '{}').error.code).toBe('rate_limited');
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused?.headers.ratelimit).toContain('"team-second";r=0');
  });

  it('answers 429 quota_exhausted on a capped plan, and serves overage on a plan that allows it', async () => {
    expect((await call('capped')).status).toBe(200);
    expect((await call('capped')).status).toBe(200);
    const over = await call('capped');
    expect(over.status).toBe(429);
    expect(JSON.parse(over.body).error.code).toBe('quota_exhausted');
    expect(over.headers.ratelimit).toContain('"quota";r=0');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(86_400);
    expect((await call('overage')).status).toBe(200);
    expect((await call('overage')).status).toBe(200);
  });

  it('answers 402 payment_required for a team whose subscription is unpaid', async () => {
    const answer = await call('unpaid');
    expect(answer.status).toBe(402);
    expect(JSON.parse(answer.body).error.code).toBe('payment_required');
  });

  it('runs the API plugins: a CORS preflight needs no key, CORS reaches errors, bodies over the limit get 413', async () => {
    const preflight = await send(server, '/browser/x', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const unauthorized = await send(server, '/browser/x', { headers: { origin: 'https://app.example.com' } });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const ok = await call('overage', '/browser/x', { headers: { origin: 'https://app.example.com' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
    const declared = await call('overage', '/browser/x', { method: 'POST', body: 'x'.repeat(17) });
    expect(declared.status).toBe(413);
    const streamed = await call('overage', '/browser/x', {
      method: 'POST',
      headers: { 'transfer-encoding': 'chunked' },
      body: 'y'.repeat(64),
      chunked: true,
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).error.code).toBe('payload_too_large');
  });

  it('follows the failure policy when the limiter cannot be reached', async () => {
    const closed = await send(deadServer, '/echo/x', { headers: { 'x-api-key': keys.steady as string } });
    expect(closed.status).toBe(503);
    expect(JSON.parse(closed.body).error.code).toBe('limiter_unavailable');
    const open = await send(deadServer, '/open/x', { headers: { 'x-api-key': keys.steady as string } });
    expect(open.status).toBe(200);
  });

  it('meters every served call, overage included, into the rollups', async () => {
    await recorder.flushNow();
    await flushUsage({ store: usageStore, database: db.value, logger });
    const rows = await db.value.query<{ team_id: string; calls: string; overage_calls: string }>(
      'SELECT team_id, sum(calls)::text AS calls, sum(overage_calls)::text AS overage_calls FROM usage_minute GROUP BY team_id',
    );
    const byTeam = Object.fromEntries(rows.rows.map((row) => [row.team_id, row]));
    expect(byTeam[teams.capped as string]?.calls).toBe('2');
    // Served for `overage`: 2 echo calls and 1 browser call; all but the first beyond the quota of 1.
    // The calls a plugin refused (413) were not served, so they are not metered.
    const overage = byTeam[teams.overage as string];
    expect(overage?.calls).toBe('3');
    expect(overage?.overage_calls).toBe('2');
    expect(byTeam[teams.unpaid as string]).toBeUndefined();
  });
});

describe.runIf(testRedisUrl)('Redis stopped mid-run', () => {
  it('fail-closed APIs answer 503 limiter_unavailable, fail-open APIs keep serving, both recover', async () => {
    const target = new URL(testRedisUrl ?? '');
    const relay = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    const keyPrefix = `tgtest:${Date.now()}:cut:`;
    const client = new Redis({
      host: '127.0.0.1',
      port: relay.port,
      keyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 500,
      retryStrategy: () => 100,
    });
    client.on('error', () => {});
    const routing = staticRouting(await listApiDefinitions(db.value));
    const app = createGatewayApp({
      logger,
      trustProxy: false,
      routing,
      keys: verifier,
      limits: {
        limiter: createRedisLimiter(client),
        fallback: createMemoryLimiter(),
        policies: createTeamPolicyCache({ load: (teamId) => loadTeamPolicy(db.value, teamId) }),
      },
    });
    const running = await listen(app.app.callback(), { host: '127.0.0.1', port: 0 });
    const headers = { 'x-api-key': keys.overage as string };
    try {
      await new Promise<void>((resolve) =>
        client.status === 'ready' ? resolve() : client.once('ready', () => resolve()),
      );
      expect((await send(running, '/echo/x', { headers })).status).toBe(200);
      expect((await send(running, '/open/x', { headers })).status).toBe(200);
      await relay.cut();
      const closed = await send(running, '/echo/x', { headers });
      expect(closed.status).toBe(503);
      expect(JSON.parse(closed.body).error.code).toBe('limiter_unavailable');
      for (let call = 0; call < 3; call++) expect((await send(running, '/open/x', { headers })).status).toBe(200);
      await relay.restore();
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await send(running, '/echo/x', { headers })).status;
        if (status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).toBe(200);
      // The three calls served in process while Redis was away are added to the team's quota once
      // it is back: 2 before the cut + 3 during + 1 after.
      const direct = new Redis(testRedisUrl ?? '');
      try {
        const quotaCounted = async () => {
          const keys = (await direct.keys(`${keyPrefix}rq:*`)).filter((key) => !key.endsWith(':overage'));
          return keys.length === 1 ? Number(await direct.get(keys[0] as string)) : Number.NaN;
        };
        const until = Date.now() + 5_000;
        while (Date.now() < until && (await quotaCounted()) !== 6) await new Promise((r) => setTimeout(r, 100));
        expect(await quotaCounted()).toBe(6);
      } finally {
        direct.disconnect();
      }
    } finally {
      await running.close(1_000);
      await app.close();
      client.disconnect();
      await relay.close();
    }
  });
});
