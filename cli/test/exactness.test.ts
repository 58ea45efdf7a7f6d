import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApi, createApiKey, createLogger, type Database, openDatabase, type Queryable } from '@tollgate/services';
import { createTestDatabaseConfig, testDatabaseUrl, testRedisUrl } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, eventually, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

/*
 * The exactness acceptance of the metered gateway (issue 4): two gateway processes and one API +
 * worker process, as separate `tollgate start` processes on one PostgreSQL database and one Redis
 * (under a Redis prefix of this run's own, so parallel test files cannot flush each other's usage),
 * a local upstream, and many concurrent clients.
 *
 * - usage: after the flush, the calls in `usage_minute` equal the 2xx answers, exactly;
 * - limits: a plan of 1,000 calls a minute admits at most 1,000 calls across both gateways;
 * - revocation: a key revoked through the CLI is refused by both gateway processes within 1 s.
 */

const usageCalls = 20_000;
const limitCalls = 1_500;
const clients = 50;
const perMinute = 1_000;

interface LoadResult {
  statuses: Map<number, number>;
  /** Error codes of the non-2xx JSON answers. */
  codes: Map<string, number>;
  elapsedMs: number;
}

let dir: string;
let disposeDatabase: (() => Promise<void>) | undefined;
let database: Database | undefined;
let upstream: Server | undefined;
const running: StartedProcess[] = [];
const agents: Agent[] = [];
let gatewayUrls: string[] = [];
/** The environment of the processes, and the control plane's URL, for CLI commands. */
let processEnv: NodeJS.ProcessEnv;
let controlApiUrl = '';
let apiSlug: string;
/** Team and key of the plan without limits (usage exactness). */
let unlimited: { teamId: string; key: string };
/** Team and key of the plan of 1,000 calls a minute (limit exactness). */
let limited: { teamId: string; key: string };

/** `count` GETs through the gateways, `clients` at a time, client i always on gateway i mod 2. */
async function load(key: string, count: number, deadlineMs: number): Promise<LoadResult> {
  const statuses = new Map<number, number>();
  const codes = new Map<string, number>();
  const started = Date.now();
  let next = 0;
  const call = (gateway: string, agent: Agent, index: number) =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        `${gateway}/${apiSlug}/items/${index}`,
        { agent, headers: { 'x-api-key': key }, timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (status >= 300) {
              const code = (JSON.parse(Buffer.concat(chunks).toString()) as { error?: { code?: string } }).error?.code;
              codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
            }
            resolve();
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('a call took over 30 s')));
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      const gateway = gatewayUrls[client % gatewayUrls.length] as string;
      const agent = agents[client % agents.length] as Agent;
      while (next < count) {
        if (Date.now() - started > deadlineMs) throw new Error(`the load took over ${deadlineMs} ms`);
        await call(gateway, agent, next++);
      }
    }),
  );
  return { statuses, codes, elapsedMs: Date.now() - started };
}

/** The figures of a run, on stderr for the record (vitest shows them under the test file). */
function report(line: string): void {
  process.stderr.write(`exactness: ${line}\n`);
}

async function usageOf(teamId: string): Promise<{ calls: number; status2xx: number }> {
  const result = await (database as Database).query<{ calls: string | null; status_2xx: string | null }>(
    'SELECT sum(calls)::text AS calls, sum(status_2xx)::text AS status_2xx FROM usage_minute WHERE team_id = $1',
    [teamId],
  );
  const row = result.rows[0];
  return { calls: Number(row?.calls ?? 0), status2xx: Number(row?.status_2xx ?? 0) };
}

/** A team subscribed to a plan of its own with these limits (null: none), and a key of the team. */
async function teamWithPlan(
  tx: Queryable,
  slug: string,
  operatorId: string,
  limits: { perMinute: number | null },
): Promise<{ teamId: string; key: string }> {
  const plan = await tx.query<{ id: string }>(
    `INSERT INTO plans (slug, name, rate_limit_per_second, rate_limit_per_minute, rate_limit_per_hour,
                        rate_limit_per_day, monthly_call_quota, overage_allowed)
     VALUES ($1, $1, NULL, $2, NULL, NULL, NULL, false) RETURNING id`,
    [slug, limits.perMinute],
  );
  const team = await tx.query<{ id: string }>(
    'INSERT INTO teams (name, slug, created_by_user_id) VALUES ($1, $1, $2) RETURNING id',
    [slug, operatorId],
  );
  const teamId = (team.rows[0] as { id: string }).id;
  const now = new Date();
  await tx.query(
    `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
     VALUES ($1, $2, 'active', 'USD', 'month', $3, $4)`,
    [teamId, (plan.rows[0] as { id: string }).id, now, new Date(now.getTime() + 30 * 86_400_000)],
  );
  const { key } = await createApiKey(tx, { teamId, name: slug });
  return { teamId, key };
}

describe.runIf(testDatabaseUrl && testRedisUrl)('exactness: 2 gateway processes sharing one Redis', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-exactness-'));
    const databaseConfig = await createTestDatabaseConfig();
    disposeDatabase = databaseConfig.dispose;
    if (databaseConfig.value.driver !== 'postgres') throw new Error('the exactness test needs TEST_DATABASE_URL');

    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => upstream?.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

    const env = cliEnv({
      TOLLGATE_CONFIG_DIR: join(dir, 'config'),
      TOLLGATE_DATA_DIR: join(dir, 'data'),
      TOLLGATE_MAIL_DIR: join(dir, 'mail'),
      TOLLGATE_API_PORT: '0',
      TOLLGATE_GATEWAY_PORT: '0',
      TOLLGATE_LOG_LEVEL: 'warn',
      // The access log of 20,000 calls would only cost CPU here (5xx answers are still written).
      TOLLGATE_ACCESS_LOG_SAMPLE: '0',
      TOLLGATE_SHUTDOWN_TIMEOUT: '5s',
      // Three processes on one database: one master key for all.
      TOLLGATE_MASTER_KEY: randomBytes(32).toString('base64'),
      DATABASE_URL: databaseConfig.value.url,
      REDIS_URL: testRedisUrl,
      // This run's own keys, batches and channels on the shared Redis.
      TOLLGATE_REDIS_PREFIX: `tgtest-exact-${randomBytes(6).toString('hex')}:`,
    });

    // The API (migrations, first operator) and the usage flusher first, then the set-up, then the gateways.
    const control = spawnStart(['--only', 'api,worker'], env);
    running.push(control);
    controlApiUrl = (await control.ready).api_url ?? '';
    processEnv = env;

    database = await openDatabase(databaseConfig.value, { logger: createLogger({ level: 'silent' }) });
    const operator = await database.query<{ id: string }>(
      `SELECT id FROM users WHERE installation_role = 'admin' ORDER BY created_at LIMIT 1`,
    );
    const operatorId = (operator.rows[0] as { id: string }).id;
    const setUp = await database.transaction(async (tx) => {
      const api = await createApi(tx, { slug: 'exact', name: 'Exactness', upstreams: [upstreamUrl] });
      return {
        slug: api.api.slug,
        unlimited: await teamWithPlan(tx, 'exact-unlimited', operatorId, { perMinute: null }),
        limited: await teamWithPlan(tx, 'exact-per-minute', operatorId, { perMinute }),
      };
    });
    apiSlug = setUp.slug;
    unlimited = setUp.unlimited;
    limited = setUp.limited;

    const gateways = [spawnStart(['--only', 'gateway'], env), spawnStart(['--only', 'gateway'], env)];
    running.push(...gateways);
    gatewayUrls = (await Promise.all(gateways.map((gateway) => gateway.ready))).map(
      (info) => info.gateway_url as string,
    );
    for (const _ of gatewayUrls) agents.push(new Agent({ keepAlive: true, maxSockets: clients }));
  }, 60_000);

  afterAll(async () => {
    for (const agent of agents) agent.destroy();
    await Promise.all(running.splice(0).map((started) => stop(started, 'SIGKILL')));
    await database?.close();
    await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve(undefined)));
    await disposeDatabase?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`meters ${usageCalls} calls from ${clients} clients over both gateways exactly`, async () => {
    const result = await load(unlimited.key, usageCalls, 180_000);
    const served = result.statuses.get(200) ?? 0;
    report(
      `usage: ${usageCalls} calls in ${result.elapsedMs} ms (${Math.round((usageCalls * 1000) / result.elapsedMs)} calls/s), statuses ${JSON.stringify(Object.fromEntries(result.statuses))}`,
    );
    expect(served).toBeGreaterThan(0);
    expect([...result.statuses.values()].reduce((a, b) => a + b, 0)).toBe(usageCalls);
    // Gateways hand their counts over about once a second and the worker flushes every 5 seconds.
    const flushStarted = Date.now();
    const usage = await eventually(
      () => usageOf(unlimited.teamId),
      (value) => value.calls >= served,
      30_000,
    );
    report(`usage: all ${served} in usage_minute ${Date.now() - flushStarted} ms after the last answer`);
    // Nothing more arrives later: the count stays exact.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(await usageOf(unlimited.teamId)).toEqual({ calls: served, status2xx: served });
    expect(usage.calls).toBe(served);
  }, 240_000);

  it(`admits at most ${perMinute} calls a minute across both gateways, and refuses the rest with 429 rate_limited`, async () => {
    const result = await load(limited.key, limitCalls, 50_000);
    const admitted = result.statuses.get(200) ?? 0;
    report(
      `limits: ${limitCalls} calls in ${result.elapsedMs} ms, statuses ${JSON.stringify(Object.fromEntries(result.statuses))}`,
    );
    expect(admitted).toBeLessThanOrEqual(perMinute);
    // Every call fell in one minute window (the per-minute window counts the last 60 to 65 s), and
    // both gateways run one script on one Redis: exactly the limit, not one call fewer.
    expect(result.elapsedMs).toBeLessThan(50_000);
    expect(admitted).toBe(perMinute);
    expect(result.statuses.get(429)).toBe(limitCalls - perMinute);
    expect(Object.fromEntries(result.codes)).toEqual({ rate_limited: limitCalls - perMinute });
    // Refused calls are not metered.
    const usage = await eventually(
      () => usageOf(limited.teamId),
      (value) => value.calls >= admitted,
      30_000,
    );
    expect(usage).toEqual({ calls: admitted, status2xx: admitted });
  }, 120_000);

  it('refuses a revoked key on both gateway processes within a second', async () => {
    const status = async (url: string) => {
      const answer = await fetch(`${url}/${apiSlug}/x`, { headers: { 'x-api-key': unlimited.key } });
      const body = (await answer.json()) as { error?: { code?: string } };
      return answer.status === 200 ? 'ok' : (body.error?.code ?? String(answer.status));
    };
    // Both gateways hold the key in their caches from the calls above.
    for (const url of gatewayUrls) expect(await status(url)).toBe('ok');
    const keyId = (
      await (database as Database).query<{ id: string }>('SELECT id FROM api_keys WHERE team_id = $1', [
        unlimited.teamId,
      ])
    ).rows[0]?.id as string;
    const revoked = await runCli(
      ['keys', 'revoke', keyId, '--yes', '--team', 'exact-unlimited', '--api-url', controlApiUrl],
      processEnv,
    );
    expect(revoked.code, revoked.stderr).toBe(0);
    const since = Date.now();
    const took: number[] = [];
    for (const url of gatewayUrls) {
      let code = await status(url);
      while (code === 'ok' && Date.now() - since < 3_000) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        code = await status(url);
      }
      expect(code).toBe('key_revoked');
      took.push(Date.now() - since);
    }
    report(`revocation: refused by both gateway processes ${took.join(' and ')} ms after the CLI returned`);
    expect(Math.max(...took)).toBeLessThan(1_000);
  }, 60_000);
});
