import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createApi,
  createLogger,
  createMemoryKeyEvents,
  createRedisKeyEvents,
  createUserWithPassword,
  type KeyEvents,
  listApiDefinitions,
  listen,
  type Queryable,
  type RunningServer,
} from '@tollgate/services';
import { expectedDatabaseDriver, startTestApi, type TestApi, testRedisUrl } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { createKeyVerifier, type KeyVerifier } from '../src/keys/key-verifier.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

const logger = createLogger({ level: 'silent' });
const password = 'gateway keys passphrase long 1';
const busName = testRedisUrl ? 'redis' : 'in process';

interface Upstream {
  url: string;
  server: Server;
  seen: IncomingMessage['headers'][];
}

async function startUpstream(): Promise<Upstream> {
  const upstream: Upstream = { url: '', server: createServer(), seen: [] };
  upstream.server.on('request', (req, res) => {
    upstream.seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
  return upstream;
}

/** One gateway process's worth: its own verifier (cache) and its own subscription to key events. */
interface TestGateway {
  app: GatewayApp;
  server: RunningServer;
  verifier: KeyVerifier;
  events: KeyEvents;
}

let control: TestApi;
/** What the control plane publishes on; with Redis, each gateway subscribes through its own connection. */
let publisherEvents: KeyEvents;
const channel = `tollgate:keys:test:${randomBytes(4).toString('hex')}`;
let upstream: Upstream;
const gateways: TestGateway[] = [];
let token: string;
let teamPath: string;
const apiIds: Record<string, string> = {};

async function openEvents(): Promise<KeyEvents> {
  if (!testRedisUrl) return publisherEvents;
  return createRedisKeyEvents({ driver: 'redis', url: testRedisUrl }, { logger, channel });
}

async function startGateway(): Promise<TestGateway> {
  const events = await openEvents();
  const verifier = createKeyVerifier({ database: control.database, events, logger });
  const app = createGatewayApp({
    logger,
    // So a test can present client addresses through X-Forwarded-For.
    trustProxy: true,
    routing: staticRouting(await listApiDefinitions(control.database)),
    keys: verifier,
  });
  const server = await listen(app.app.callback(), { host: '127.0.0.1', port: 0 });
  const gateway = { app, server, verifier, events };
  gateways.push(gateway);
  return gateway;
}

beforeAll(async () => {
  publisherEvents = testRedisUrl
    ? await createRedisKeyEvents({ driver: 'redis', url: testRedisUrl }, { logger, channel })
    : createMemoryKeyEvents({ logger });
  control = await startTestApi({ keyEvents: publisherEvents });
  upstream = await startUpstream();
  for (const slug of ['weather', 'maps']) {
    const { api } = await control.database.transaction((tx) =>
      createApi(tx, { slug, name: slug, upstreams: [upstream.url] }),
    );
    apiIds[slug] = api.id;
  }
  const email = `keys.${randomBytes(4).toString('hex')}@example.com`;
  await control.database.transaction((tx) => createUserWithPassword(tx, { email, password }));
  const login = await fetch(`${control.server.url}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  token = ((await login.json()) as { access_token: string }).access_token;
  const team = await controlCall('POST', '/v1/teams', { name: 'Gateway keys' });
  teamPath = `/v1/teams/${team.body.id}`;
});

afterAll(async () => {
  for (const gateway of gateways) {
    await gateway.server.close(1_000);
    await gateway.app.close();
    await gateway.verifier.close();
    if (gateway.events !== publisherEvents) await gateway.events.close();
  }
  upstream?.server.closeAllConnections();
  upstream?.server.close();
  await control?.dispose();
  await publisherEvents?.close();
});

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of many shapes; the assertions check them
async function controlCall(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${control.server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function createKey(options: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const created = await controlCall('POST', `${teamPath}/keys`, options);
  expect(created.status).toBe(201);
  return created.body;
}

interface Answer {
  status: number;
  code: string | undefined;
  headers: Headers;
}

async function call(
  gateway: TestGateway,
  path: string,
  options: { key?: string; header?: 'authorization' | 'x-api-key'; method?: string; from?: string } = {},
  extraHeaders: Record<string, string> = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...extraHeaders };
  if (options.key !== undefined) {
    if (options.header === 'x-api-key') headers['x-api-key'] = options.key;
    else headers.authorization = `Bearer ${options.key}`;
  }
  if (options.from) headers['x-forwarded-for'] = options.from;
  const response = await fetch(`${gateway.server.url}${path}`, { method: options.method ?? 'GET', headers });
  const text = await response.text();
  const code = response.status >= 400 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined;
  return { status: response.status, code, headers: response.headers };
}

/** Polls until the gateway answers `code`; the time it took from `since`, in ms. */
async function msUntil(gateway: TestGateway, key: string, code: string, since: number): Promise<number> {
  for (;;) {
    const answer = await call(gateway, '/weather/poll', { key });
    if (answer.code === code) return performance.now() - since;
    if (performance.now() - since > 5_000) throw new Error(`still ${answer.status} ${answer.code} after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe(`API keys at the gateway (${expectedDatabaseDriver}, events ${busName})`, () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });

  it('proxies a call with a valid key, and the key never reaches the upstream', async () => {
    const { key } = await createKey({ name: 'valid' });
    upstream.seen.length = 0;
    expect((await call(gateway, '/weather/today', { key })).status).toBe(200);
    expect(upstream.seen[0]?.authorization).toBeUndefined();
    // x-api-key leaves the client's own Authorization for the upstream, and is itself dropped.
    const own = 'Basic dXBzdHJlYW06c2VjcmV0';
    expect((await call(gateway, '/weather/today', { key, header: 'x-api-key' }, { authorization: own })).status).toBe(
      200,
    );
    expect(upstream.seen[1]?.authorization).toBe(own);
    expect(upstream.seen[1]?.['x-api-key']).toBeUndefined();
    expect(JSON.stringify(upstream.seen)).not.toContain(key.split('_')[3]);
  });

  it('answers 401 unauthorized with WWW-Authenticate to a missing, malformed, unknown or wrong key', async () => {
    const { key } = await createKey();
    const [, mode, id, secret] = key.split('_') as [string, string, string, string];
    const wrongSecret = `tg_${mode}_${id}_${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    const cases: [string, string | undefined][] = [
      ['missing', undefined],
      ['malformed', 'not-a-key'],
      ['truncated', key.slice(0, -1)],
      ['unknown', `tg_live_${'Q'.repeat(16)}_${'x'.repeat(43)}`],
      ['wrong secret', wrongSecret],
      ['wrong mode', `tg_test_${id}_${secret}`],
    ];
    upstream.seen.length = 0;
    for (const [what, presented] of cases) {
      const answer = await call(gateway, '/weather/x', presented === undefined ? {} : { key: presented });
      expect(`${what}: ${answer.status} ${answer.code}`).toBe(`${what}: 401 unauthorized`);
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="tollgate"/);
    }
    const basic = await fetch(`${gateway.server.url}/weather/x`, { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(basic.status).toBe(401);
    expect(upstream.seen).toEqual([]);
  });

  it('refuses a revoked key within one second on every gateway that had it cached', async () => {
    const other = await startGateway();
    const { id, key } = await createKey({ name: 'to revoke' });
    for (const each of [gateway, other]) expect((await call(each, '/weather/warm', { key })).status).toBe(200);
    const started = performance.now();
    expect((await controlCall('DELETE', `${teamPath}/keys/${id}`)).status).toBe(204);
    const elapsed = await Promise.all([gateway, other].map((each) => msUntil(each, key, 'key_revoked', started)));
    for (const ms of elapsed) expect(ms).toBeLessThan(1_000);
    const answer = await call(gateway, '/weather/after', { key });
    expect([answer.status, answer.code]).toEqual([401, 'key_revoked']);
  });

  it('refuses an expired key with 401 key_expired', async () => {
    const { key } = await createKey({ expires_in: '1s' });
    expect((await call(gateway, '/weather/x', { key })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const answer = await call(gateway, '/weather/x', { key });
    expect([answer.status, answer.code]).toEqual([401, 'key_expired']);
  });

  it('answers 403 to a key used for another API, method or address', async () => {
    const { key } = await createKey({
      apis: ['weather'],
      methods: ['GET', 'POST'],
      allowed_cidrs: ['10.0.0.0/8', '2001:db8::/32'],
    });
    const at = (path: string, method: string, from: string) => call(gateway, path, { key, method, from });
    const expectations: [string, Promise<Answer>, number, string | undefined][] = [
      ['allowed IPv4', at('/weather/x', 'GET', '10.1.2.3'), 200, undefined],
      ['allowed IPv6', at('/weather/x', 'POST', '2001:db8::5'), 200, undefined],
      ['other API', at('/maps/x', 'GET', '10.1.2.3'), 403, 'key_api_not_allowed'],
      ['other method', at('/weather/x', 'DELETE', '10.1.2.3'), 403, 'key_method_not_allowed'],
      ['other IPv4', at('/weather/x', 'GET', '192.0.2.1'), 403, 'key_address_not_allowed'],
      ['other IPv6', at('/weather/x', 'GET', '2001:db9::1'), 403, 'key_address_not_allowed'],
    ];
    for (const [what, answer, status, code] of expectations) {
      const { status: got, code: gotCode } = await answer;
      expect(`${what}: ${got} ${gotCode}`).toBe(`${what}: ${status} ${code}`);
    }
    // Without a header, the address is the socket's, 127.0.0.1: not in the list.
    const local = await call(gateway, '/weather/x', { key });
    expect(local.code).toBe('key_address_not_allowed');
  });

  it('accepts the old secret during the rotation grace and refuses it after', async () => {
    const { id, key: old } = await createKey({ name: 'rotating' });
    expect((await call(gateway, '/weather/x', { key: old })).status).toBe(200);
    // A grace long enough that the old secret is still inside it on a loaded CI machine.
    const rotated = await controlCall('POST', `${teamPath}/keys/${id}/rotate`, { grace: '4s' });
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.key as string;
    expect((await call(gateway, '/weather/x', { key: fresh })).status).toBe(200);
    expect((await call(gateway, '/weather/x', { key: old })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 4_100));
    const after = await call(gateway, '/weather/x', { key: old });
    expect([after.status, after.code]).toEqual([401, 'key_expired']);
    expect((await call(gateway, '/weather/x', { key: fresh })).status).toBe(200);

    // Without grace the replaced secret stops within a second, cached or not.
    const started = performance.now();
    const again = await controlCall('POST', `${teamPath}/keys/${id}/rotate`, { grace: '0' });
    expect(await msUntil(gateway, fresh, 'unauthorized', started)).toBeLessThan(1_000);
    expect((await call(gateway, '/weather/x', { key: again.body.key })).status).toBe(200);
  });

  it('accepts test-mode keys as themselves only', async () => {
    const { key } = await createKey({ mode: 'test' });
    expect(key.startsWith('tg_test_')).toBe(true);
    expect((await call(gateway, '/weather/x', { key })).status).toBe(200);
    expect((await call(gateway, '/weather/x', { key: key.replace('tg_test_', 'tg_live_') })).code).toBe('unauthorized');
  });
});

describe(`the key cache (${expectedDatabaseDriver})`, () => {
  /** The real database, counting what the verifier asks of it. */
  function counting(database: Queryable): Queryable & { reads: number; writes: number } {
    const wrapper = {
      reads: 0,
      writes: 0,
      query: (sql: string, params?: readonly unknown[]) => {
        if (sql.trimStart().startsWith('SELECT')) wrapper.reads++;
        else wrapper.writes++;
        return database.query(sql, params);
      },
      exec: (sql: string) => database.exec(sql),
    };
    return wrapper as Queryable & { reads: number; writes: number };
  }

  it('reads a key once for a burst of requests, and an unknown id once too', async () => {
    const database = counting(control.database);
    const verifier = createKeyVerifier({ database, logger });
    const { key } = await createKey();
    const check = { apiId: apiIds.weather as string, method: 'GET', clientIp: '127.0.0.1' };
    const burst = await Promise.all(Array.from({ length: 50 }, () => verifier.verify(key, check)));
    expect(database.reads).toBe(1);
    expect(new Set(burst.map((verified) => verified.keyId)).size).toBe(1);
    // A cache hit answers without a promise and without a query.
    const hit = verifier.verify(key, check);
    expect(hit).not.toBeInstanceOf(Promise);
    expect(database.reads).toBe(1);

    const unknownKey = `tg_live_${'Z'.repeat(16)}_${'y'.repeat(43)}`;
    const refusals = await Promise.allSettled(
      Array.from({ length: 20 }, async () => verifier.verify(unknownKey, check)),
    );
    expect(refusals.every((refusal) => refusal.status === 'rejected')).toBe(true);
    expect(() => verifier.verify(unknownKey, check)).toThrow('not valid');
    expect(database.reads).toBe(2);
    await verifier.close();
  });

  it('exposes the key as the limiter needs it and records its last use in one batched write', async () => {
    const database = counting(control.database);
    const verifier = createKeyVerifier({ database, logger });
    const created = await controlCall('POST', `${teamPath}/keys`, { limits: { per_second: 5, per_hour: 100 } });
    const check = { apiId: apiIds.weather as string, method: 'GET', clientIp: '127.0.0.1' };
    const verified = await verifier.verify(created.body.key, check);
    expect(verified).toMatchObject({
      keyId: created.body.id,
      mode: 'live',
      apis: [],
      methods: [],
      allowedCidrs: [],
      limits: { per_second: 5, per_hour: 100 },
      expiresAt: null,
    });
    for (let i = 0; i < 100; i++) verifier.verify(created.body.key, check);
    expect(database.writes).toBe(0);
    await verifier.close();
    expect(database.writes).toBe(1);
    const shown = await controlCall('GET', `${teamPath}/keys/${created.body.id}`);
    expect(Date.now() - Date.parse(shown.body.last_used_at)).toBeLessThan(60_000);
  });
});
