import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestDatabaseConfig,
  expectedCounterDriver,
  expectedDatabaseDriver,
  startTcpProxy,
  testDatabaseUrl,
  testRedisUrl,
} from '@tollgate/services/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, closedUrl, eventually, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

const running: StartedProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((started) => stop(started, 'SIGKILL')));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let configDir: string;
beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'tollgate-config-'));
});
afterAll(() => rm(configDir, { recursive: true, force: true }));

/** Environment for `tollgate start` on the test backends: a fresh database, the test Redis if any. */
async function backendEnv(
  overrides: Record<string, string> = {},
): Promise<{ env: NodeJS.ProcessEnv; dataDir: string }> {
  const database = await createTestDatabaseConfig();
  cleanups.push(database.dispose);
  const dataDir = database.value.driver === 'pglite' ? database.value.dataDir : join(tmpdir(), 'unused');
  const env = cliEnv({
    TOLLGATE_CONFIG_DIR: configDir,
    TOLLGATE_API_PORT: '0',
    TOLLGATE_GATEWAY_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_SHUTDOWN_TIMEOUT: '5s',
    TOLLGATE_DATA_DIR: dataDir,
    DATABASE_URL: database.value.driver === 'postgres' ? database.value.url : undefined,
    REDIS_URL: testRedisUrl,
    ...overrides,
  });
  return { env, dataDir };
}

function start(args: string[], env: NodeJS.ProcessEnv): StartedProcess {
  const started = spawnStart(args, env);
  running.push(started);
  return started;
}

describe('tollgate start with bad configuration', () => {
  it.each([
    [
      { TOLLGATE_API_PORT: 'abc' },
      [],
      /^config_invalid: TOLLGATE_API_PORT must be a port number from 0 to 65535 \(got "abc"\)\n$/,
    ],
    [
      { DATABASE_URL: 'mysql://root:pw@db/x' },
      [],
      /^config_invalid: DATABASE_URL must be a PostgreSQL URL \(postgres:\/\/ or postgresql:\/\/host:port\/\.\.\.\)\n$/,
    ],
    [{ DATABASE_URL: 'postgres//missing-colon' }, [], /^config_invalid: DATABASE_URL must be a PostgreSQL URL/],
    [
      {},
      ['--gateway-port', '99999'],
      /^config_invalid: --gateway-port must be a port number from 0 to 65535 \(got "99999"\)\n$/,
    ],
  ])('%j %j exits 2 with one line naming the setting', async (overrides, args, expected) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-bad-config-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const result = await runCli(['start', ...args], cliEnv({ TOLLGATE_DATA_DIR: dataDir, ...overrides }));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(expected);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(result.stderr).not.toContain('pw@');
    expect(result.stdout).toBe('');
    // Nothing was created: the process stopped before touching storage.
    expect(existsSync(join(dataDir, 'pgdata'))).toBe(false);
  });
});

describe('tollgate start --only', () => {
  it.each([
    ['--only', 'api,billing'],
    ['--only', ','],
  ])('refuses %s %j as a usage error', async (flag, value) => {
    const result = await runCli(['start', flag, value], cliEnv({ TOLLGATE_DATA_DIR: join(tmpdir(), 'unused') }));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^usage_error: --only \(TOLLGATE_ONLY\) must list parts among api, gateway, worker/);
  });
});

describe(`tollgate start (${expectedDatabaseDriver} + ${expectedCounterDriver})`, () => {
  it('serves the API, the gateway and the worker on the configured backends, and drains on Ctrl-C', async () => {
    const { env, dataDir } = await backendEnv();
    const started = start([], env);
    const info = await started.ready;
    expect(info).toMatchObject({
      status: 'running',
      embedded: expectedDatabaseDriver === 'pglite' && expectedCounterDriver === 'memory',
      database: { driver: expectedDatabaseDriver },
      counters: { driver: expectedCounterDriver },
      worker: true,
    });
    expect(info.migrations.applied.length).toBeGreaterThan(0);
    expect(info.database.location).not.toMatch(/:[^/@]*@/);

    const readyz = await fetch(`${info.api_url}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toMatchObject({
      status: 'ready',
      checks: { database: { driver: expectedDatabaseDriver }, counters: { driver: expectedCounterDriver } },
    });
    expect((await fetch(`${info.gateway_url}/healthz`)).status).toBe(200);
    expect((await fetch(`${info.gateway_url}/no-such-api/x`)).status).toBe(404);
    // API and gateway share one metrics registry in one process.
    expect(await (await fetch(`${info.api_url}/metrics`)).text()).toMatch(
      /tollgate_gateway_requests_total\{api="unrouted",status="404"\} 1/,
    );

    const status = await runCli(['status', '--json', '--api-url', info.api_url ?? ''], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      api_url: info.api_url,
      status: 'ready',
      checks: { database: { status: 'up' }, counters: { status: 'up' } },
    });
    const workers = await eventually(
      async () =>
        ((await (await fetch(`${info.api_url}/readyz`)).json()) as { workers?: { alive: number } }).workers?.alive,
      (alive) => alive === 1,
    );
    expect(workers).toBe(1);

    const human = await runCli(['status', '--api-url', info.api_url ?? ''], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(': ready');
    expect(human.stdout).toMatch(new RegExp(`database\\t${expectedDatabaseDriver}\\tup`));

    expect(await stop(started, 'SIGINT')).toBe(0);
    expect(started.stderr()).toContain('SIGINT received: draining in-flight requests');
    expect(started.stderr()).toMatch(/Stopped in \d+ ms\./);
    await expect(fetch(`${info.api_url}/healthz`)).rejects.toThrow();
    if (expectedDatabaseDriver === 'pglite') expect(existsSync(join(dataDir, 'tollgate.pid'))).toBe(false);
  });

  it('stops cleanly on SIGTERM while still waiting for PostgreSQL at start-up', async () => {
    const { env } = await backendEnv();
    const port = new URL(await closedUrl()).port;
    const started = start([], { ...env, DATABASE_URL: `postgres://tollgate:pw@127.0.0.1:${port}/tollgate` });
    await eventually(
      async () => started.stderr(),
      (text) => text.includes('PostgreSQL is not answering yet'),
    );
    const signalled = performance.now();
    expect(await stop(started, 'SIGTERM')).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(5_000);
    expect(started.stderr()).toContain('SIGTERM received during start-up: stopping.');
    expect(JSON.parse(started.stdout())).toEqual({ status: 'stopped', signal: 'SIGTERM' });
  });

  it('applies no migration twice when started again on the same database', async () => {
    const { env } = await backendEnv();
    // The parts can come from TOLLGATE_ONLY as well as from --only.
    const first = start([], { ...env, TOLLGATE_ONLY: 'api,worker' });
    const firstInfo = await first.ready;
    expect(firstInfo).toMatchObject({ gateway_url: null, worker: true });
    expect(firstInfo.api_url).toMatch(/^http:/);
    expect(await stop(first, 'SIGTERM')).toBe(0);
    const second = start(['--only', 'api'], env);
    const secondInfo = await second.ready;
    expect(secondInfo.migrations).toEqual({ applied: [], already_applied: firstInfo.migrations.applied.length });
    expect(secondInfo.gateway_url).toBeNull();
    expect(secondInfo.worker).toBe(false);
    expect(await stop(second)).toBe(0);
  });

  it.skipIf(!testDatabaseUrl)(
    'two processes starting at once on one PostgreSQL apply each migration exactly once',
    async () => {
      const { env } = await backendEnv();
      const a = start(['--only', 'worker'], env);
      const b = start(['--only', 'worker'], env);
      const [infoA, infoB] = await Promise.all([a.ready, b.ready]);
      const applied = [...infoA.migrations.applied, ...infoB.migrations.applied];
      expect(new Set(applied).size).toBe(applied.length);
      expect(applied.length).toBe(infoA.migrations.applied.length + infoA.migrations.already_applied);
      expect(await Promise.all([stop(a), stop(b)])).toEqual([0, 0]);
    },
  );

  it.skipIf(!!testDatabaseUrl)(
    'a second process on the same embedded data folder stops with data_dir_locked',
    async () => {
      const { env, dataDir } = await backendEnv();
      const first = start([], env);
      await first.ready;
      const second = await runCli(['start'], env);
      expect(second.code).toBe(1);
      expect(second.stdout).toBe('');
      expect(second.stderr).toContain('data_dir_locked');
      expect(second.stderr).toContain(dataDir);
      expect(second.stderr).toMatch(/hint: stop that process, or set TOLLGATE_DATA_DIR/);
      expect(await stop(first)).toBe(0);
    },
  );

  it.skipIf(!testRedisUrl)(
    'reports Redis down with 503 while it is away and ready again when it is back, without a restart',
    async () => {
      const target = new URL(testRedisUrl ?? 'redis://127.0.0.1:6379');
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      cleanups.push(() => proxy.close());
      const { env } = await backendEnv({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
      const started = start(['--only', 'api'], env);
      const info = await started.ready;
      const readyz = `${info.api_url}/readyz`;
      expect((await fetch(readyz)).status).toBe(200);

      await proxy.cut();
      const down = await eventually(
        async () => {
          const response = await fetch(readyz);
          return { status: response.status, body: (await response.json()) as Record<string, unknown> };
        },
        (answer) => answer.status === 503,
      );
      expect(down.body).toMatchObject({
        status: 'not_ready',
        checks: { database: { status: 'up' }, counters: { status: 'down', driver: 'redis' } },
        error: { code: 'not_ready', message: expect.stringContaining('redis is down') },
      });
      const status = await runCli(['status', '--api-url', info.api_url ?? ''], env);
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(/counters\tredis\tdown/);
      expect(status.stderr).toContain('not_ready: not ready: redis is down');

      await proxy.restore();
      await eventually(
        async () => (await fetch(readyz)).status,
        (code) => code === 200,
        15_000,
      );
      expect(await stop(started)).toBe(0);
    },
  );
});
