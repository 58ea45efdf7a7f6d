import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestDatabaseConfig,
  expectedCounterDriver,
  expectedDatabaseDriver,
  testRedisUrl,
} from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, eventually, runCli, type StartedProcess, spawnStart, stop } from './support/run-cli.js';

interface DemoDocument {
  api: string;
  api_created: boolean;
  upstream_url: string;
  plan: string;
  team: string;
  team_created: boolean;
  key: { id: string; prefix: string; secret: string } | null;
  earlier_key_prefixes: string[];
  url: string;
  headers: Record<string, string> | null;
  curl: string | null;
}

let dir: string;
let env: NodeJS.ProcessEnv;
let disposeDatabase: () => Promise<void>;
const running: StartedProcess[] = [];

async function startDemo(args: string[] = ['--demo']): Promise<{ demo: DemoDocument; gatewayUrl: string }> {
  const started = spawnStart(args, env);
  running.push(started);
  const info = (await started.ready) as unknown as { gateway_url: string; demo: DemoDocument };
  return { demo: info.demo, gatewayUrl: info.gateway_url };
}

async function stopAll(): Promise<void> {
  const codes = await Promise.all(running.splice(0).map((started) => stop(started)));
  expect(codes.every((code) => code === 0)).toBe(true);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tollgate-demo-'));
  const database = await createTestDatabaseConfig();
  disposeDatabase = database.dispose;
  env = cliEnv({
    TOLLGATE_CONFIG_DIR: join(dir, 'config'),
    TOLLGATE_MAIL_DIR: join(dir, 'mail'),
    TOLLGATE_API_PORT: '0',
    TOLLGATE_GATEWAY_PORT: '0',
    TOLLGATE_LOG_LEVEL: 'warn',
    TOLLGATE_SHUTDOWN_TIMEOUT: '5s',
    TOLLGATE_DATA_DIR: database.value.driver === 'pglite' ? database.value.dataDir : join(dir, 'data'),
    DATABASE_URL: database.value.driver === 'postgres' ? database.value.url : undefined,
    REDIS_URL: testRedisUrl,
  });
});

afterAll(async () => {
  await Promise.all(running.splice(0).map((started) => stop(started, 'SIGKILL')));
  await disposeDatabase?.();
  await rm(dir, { recursive: true, force: true });
});

describe(`tollgate start --demo (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  let firstKey: { prefix: string; secret: string };

  it('on a fresh installation gives a curl command that reaches the echo upstream and is metered', async () => {
    const { demo, gatewayUrl } = await startDemo();
    expect(demo).toMatchObject({ api: 'demo', api_created: true, plan: 'demo', team: 'demo', team_created: true });
    expect(demo.key?.secret).toMatch(/^tg_live_[A-Za-z0-9]+_[A-Za-z0-9]+$/);
    const secret = demo.key?.secret as string;
    firstKey = { prefix: demo.key?.prefix as string, secret };
    expect(demo.url).toBe(`${gatewayUrl}/demo/hello?name=ada`);
    expect(demo.curl).toBe(`curl -H "Authorization: Bearer ${secret}" "${demo.url}"`);

    // The call the curl command makes, then two more.
    const response = await fetch(demo.url, { headers: demo.headers ?? {} });
    expect(response.status).toBe(200);
    const echo = (await response.json()) as Record<string, unknown>;
    expect(echo).toMatchObject({ echo: true, method: 'GET', path: '/hello', query: { name: 'ada' }, body_bytes: 0 });
    expect(echo.message).toContain('Hello, ada!');
    // The gateway strips the key before proxying.
    expect(JSON.stringify(echo.headers)).not.toContain(secret);
    const post = await fetch(`${gatewayUrl}/demo/orders?x=1&x=2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'tea' }),
    });
    expect(await post.json()).toMatchObject({
      method: 'POST',
      path: '/orders',
      query: { x: ['1', '2'] },
      body_bytes: 14,
    });
    expect((await fetch(demo.url, { headers: demo.headers ?? {} })).status).toBe(200);
    // Without the key: refused by the gateway, never reaching the echo.
    expect((await fetch(demo.url)).status).toBe(401);

    // The flusher moves the counts to the rollups every few seconds.
    const usage = await eventually(
      async () => JSON.parse((await runCli(['usage', '--team', 'demo', '--json'], env)).stdout || '{}'),
      (answer) => answer.totals?.calls === 3,
      20_000,
    );
    expect(usage.quota).toMatchObject({
      plan: 'demo',
      limit: 1000,
      used_in_period: 3,
      remaining: 997,
      overage_calls: 0,
      overage_allowed: true,
    });
    const table = await runCli(['usage', '--team', 'demo'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^quota\s+997 of 1000 calls left/m);

    // What the demo made is in the audit log.
    const audit = await runCli(['audit', 'list', '--json'], env);
    const actions = (JSON.parse(audit.stdout) as { entries: { action: string }[] }).entries.map(
      (entry) => entry.action,
    );
    expect(actions).toEqual(
      expect.arrayContaining(['plan.created', 'team.created', 'subscription.created', 'api.created', 'key.created']),
    );
    await stopAll();
  }, 60_000);

  it('on a later start reuses the demo, re-points it at the new echo and never shows the old key again', async () => {
    const { demo, gatewayUrl } = await startDemo();
    expect(demo).toMatchObject({
      api: 'demo',
      api_created: false,
      team_created: false,
      key: null,
      headers: null,
      curl: null,
      earlier_key_prefixes: [firstKey.prefix],
    });
    // The key from the first start still works, through the echo's new port.
    const response = await fetch(demo.url, { headers: { authorization: `Bearer ${firstKey.secret}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ echo: true, path: '/hello' });
    expect(demo.url).toBe(`${gatewayUrl}/demo/hello?name=ada`);
    await stopAll();

    // Asked for, a new key (the old one keeps working).
    const again = await startDemo(['--demo-new-key']);
    expect(again.demo.key?.prefix).toBeDefined();
    expect(again.demo.key?.prefix).not.toBe(firstKey.prefix);
    const call = await fetch(again.demo.url, { headers: again.demo.headers ?? {} });
    expect(call.status).toBe(200);
    await stopAll();
  }, 60_000);
});
