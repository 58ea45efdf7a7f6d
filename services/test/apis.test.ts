import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentConfigVersion, listApiDefinitions, loadRoutingConfig } from '../src/apis/apis.js';
import { type ConfigBus, createInProcessConfigBus, openConfigBus, openRedisConfigBus } from '../src/apis/config-bus.js';
import { verifyAuditChain } from '../src/audit/index.js';
import { createApiKey } from '../src/keys/api-keys.js';
import { createMemoryKeyEvents, type KeyEvent } from '../src/keys/key-events.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  silentLogger,
  testCounterConfig,
  testRedisUrl,
  uniqueKey,
} from './support/backends.js';
import { startTcpProxy } from './support/tcp-proxy.js';

/** Resolves with the versions a bus delivers, once `count` of them arrived. */
function collect(bus: ConfigBus, count: number, timeoutMs = 5_000): Promise<number[]> {
  const seen: number[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`only ${JSON.stringify(seen)} arrived`));
    }, timeoutMs);
    const stop = bus.subscribe((version) => {
      seen.push(version);
      if (seen.length === count) {
        clearTimeout(timer);
        stop();
        resolve(seen);
      }
    });
  });
}

/** The bus the suite's API publishes on: Redis under a channel of its own with TEST_REDIS_URL, else in process. */
async function openTestBus(options: { redisUrl?: string } = {}): Promise<ConfigBus> {
  const redisUrl = options.redisUrl ?? testRedisUrl;
  const channel = uniqueKey('config');
  return redisUrl
    ? openRedisConfigBus(
        { driver: 'redis', url: redisUrl },
        { logger: silentLogger(), channel, keyPrefix: `${channel}:` },
      )
    : openConfigBus(testCounterConfig(), { logger: silentLogger() });
}

let testApi: TestApi;
const { account, call } = accountsOn(() => testApi);
let bus: ConfigBus;
const keyEvents = createMemoryKeyEvents();

beforeAll(async () => {
  bus = await openTestBus();
  testApi = await startTestApi({ configBus: bus, keyEvents });
});
afterAll(async () => {
  await testApi.dispose();
  await bus.close();
});

/** Everything an API write touches, to prove a refused one changed nothing. */
async function registryState(): Promise<unknown> {
  const { database } = testApi;
  const rows = async (sql: string) => (await database.query(sql)).rows;
  return {
    apis: await rows(
      'SELECT slug, name, hosts, path_prefix, upstreams, timeout_ms, plugins, updated_at FROM apis ORDER BY slug',
    ),
    hosts: await rows('SELECT host, api_id FROM api_hosts ORDER BY host'),
    prefixes: await rows('SELECT prefix, api_id FROM api_path_prefixes ORDER BY prefix'),
    keys: await rows('SELECT id, revoked_at FROM api_keys ORDER BY id'),
    version: await currentConfigVersion(database),
  };
}

const slug = (label: string) => `${label}-${randomBytes(3).toString('hex')}`;

describe(`the API registry over HTTP (${expectedDatabaseDriver}, bus: ${expectedCounterDriver})`, () => {
  let operator: SignedInAccount;
  let teamAdmin: SignedInAccount;

  beforeAll(async () => {
    [operator, teamAdmin] = await Promise.all([account('operator', 'admin'), account('team-admin')]);
    const team = await call(teamAdmin, 'POST', '/v1/teams', { name: `Acme ${randomBytes(3).toString('hex')}` });
    expect(team.status).toBe(201);
  });

  it('creates, lists, shows, updates and deletes an API, one config version per change', async () => {
    const start = await currentConfigVersion(testApi.database);
    const weather = slug('weather');
    const created = await call(operator, 'POST', '/v1/apis', {
      name: 'Weather',
      slug: weather,
      upstreams: ['https://API.Weather.example:443/v2/', 'http://10.0.0.7:8080'],
      hosts: ['Weather-API.example.com.'],
      path_prefix: `/${weather}-v1/forecast`,
      timeout_ms: 5_000,
      failure_policy: 'fail-open',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      slug: weather,
      name: 'Weather',
      // Canonical: lower-case host, no default port, no trailing slash; hosts lower-case without the dot.
      upstreams: ['https://api.weather.example/v2', 'http://10.0.0.7:8080'],
      hosts: ['weather-api.example.com'],
      path_prefix: `/${weather}-v1/forecast`,
      timeout_ms: 5_000,
      failure_policy: 'fail-open',
      metered_metrics: ['calls', 'bandwidth'],
      plugins: [],
      created_by_user_id: operator.id,
    });
    expect(await currentConfigVersion(testApi.database)).toBe(start + 1);

    const list = await call(operator, 'GET', '/v1/apis');
    expect(list.status).toBe(200);
    expect(list.body.config_version).toBe(start + 1);
    expect(list.body.apis.find((api: { slug: string }) => api.slug === weather)).toEqual(created.body);
    expect((await call(operator, 'GET', `/v1/apis/${weather}`)).body).toEqual(created.body);
    expect((await call(operator, 'GET', `/v1/apis/${created.body.id}`)).body).toEqual(created.body);

    const updated = await call(operator, 'PATCH', `/v1/apis/${weather}`, {
      upstreams: ['https://eu.weather.example'],
      path_prefix: null,
      metered_metrics: ['calls'],
      plugins: [{ name: 'cors', config: { origins: ['https://app.example'] } }],
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      upstreams: ['https://eu.weather.example'],
      path_prefix: null,
      hosts: ['weather-api.example.com'],
      metered_metrics: ['calls'],
      plugins: [{ name: 'cors', config: { origins: ['https://app.example'] } }],
      timeout_ms: 5_000,
    });
    expect(await currentConfigVersion(testApi.database)).toBe(start + 2);
    const definition = (await listApiDefinitions(testApi.database)).find((api) => api.slug === weather);
    expect(definition).toEqual({
      id: created.body.id,
      slug: weather,
      name: 'Weather',
      hosts: ['weather-api.example.com'],
      pathPrefix: null,
      upstreams: ['https://eu.weather.example'],
      timeoutMs: 5_000,
      failurePolicy: 'fail-open',
      meteredMetrics: ['calls'],
      plugins: [{ name: 'cors', config: { origins: ['https://app.example'] } }],
      updatedAt: expect.any(Date),
    });
    // The freed prefix can be claimed by another API now.
    const other = await call(operator, 'POST', '/v1/apis', {
      name: 'Other',
      slug: slug('other'),
      upstreams: ['https://other.example'],
      path_prefix: `/${weather}-v1/forecast`,
    });
    expect(other.status).toBe(201);

    const deleted = await call(operator, 'DELETE', `/v1/apis/${weather}`);
    expect(deleted).toEqual({ status: 200, body: { id: created.body.id, slug: weather, revoked_key_ids: [] } });
    expect((await call(operator, 'GET', `/v1/apis/${weather}`)).status).toBe(404);
    const routing = await loadRoutingConfig(testApi.database);
    expect(routing.version).toBe(start + 4);
    expect(routing.apis.map((api) => api.slug)).not.toContain(weather);
    expect((await call(operator, 'DELETE', `/v1/apis/${weather}`)).body.error.code).toBe('not_found');

    const actions = await testApi.database.query<{ action: string; target_id: string }>(
      `SELECT action, target_id FROM audit_log WHERE target_type = 'api' AND target_id = $1 ORDER BY seq`,
      [created.body.id],
    );
    expect(actions.rows.map((row) => row.action)).toEqual(['api.created', 'api.updated', 'api.deleted']);
    expect(await verifyAuditChain(testApi.database)).toMatchObject({ ok: true });
  });

  it('publishes each new version on the config bus after the change commits', async () => {
    const received = collect(bus, 2);
    const name = slug('published');
    const created = await call(operator, 'POST', '/v1/apis', {
      name: 'P',
      slug: name,
      upstreams: ['http://p.example'],
    });
    expect(created.status).toBe(201);
    const afterCreate = await currentConfigVersion(testApi.database);
    expect((await call(operator, 'PATCH', `/v1/apis/${name}`, { name: 'Published' })).status).toBe(200);
    expect(await received).toEqual([afterCreate, afterCreate + 1]);
  });

  describe('refuses bad input with its code and writes nothing', () => {
    const valid = () => ({ name: 'Valid', slug: slug('valid'), upstreams: ['https://valid.example'] });
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['a slug with capitals', { slug: 'Weather' }, 'validation_failed', /^slug: use 1 to 63 lower-case/],
      ['a slug starting with a dash', { slug: '-weather' }, 'validation_failed', /^slug:/],
      ['a reserved slug', { slug: 'healthz' }, 'validation_failed', /^slug: is reserved/],
      ['a slug of 64 characters', { slug: 'a'.repeat(64) }, 'validation_failed', /^slug:/],
      ['an empty name', { name: '  ' }, 'validation_failed', /^name: must not be empty/],
      ['no upstream', { upstreams: [] }, 'validation_failed', /^upstreams: give at least one upstream/],
      [
        'an ftp upstream',
        { upstreams: ['ftp://files.example'] },
        'invalid_upstream',
        /^upstreams\.0: must use http or https/,
      ],
      ['a relative upstream', { upstreams: ['/v1'] }, 'invalid_upstream', /^upstreams\.0: must be an absolute http/],
      [
        'an upstream with credentials',
        { upstreams: ['https://a.example', 'https://user:pw@b.example'] },
        'invalid_upstream',
        /^upstreams\.1: must not carry credentials/,
      ],
      ['an upstream with a query', { upstreams: ['https://a.example/?key=1'] }, 'invalid_upstream', /query string/],
      ['an upstream with a fragment', { upstreams: ['https://a.example/#top'] }, 'invalid_upstream', /fragment/],
      [
        'a host with a port',
        { hosts: ['api.example.com:8443'] },
        'validation_failed',
        /^hosts\.0: must be a host name/,
      ],
      ['a host with a scheme', { hosts: ['https://api.example.com'] }, 'validation_failed', /^hosts\.0:/],
      ['a host with a bad label', { hosts: ['-bad.example.com'] }, 'validation_failed', /^hosts\.0:/],
      [
        'a prefix without a leading slash',
        { path_prefix: 'weather' },
        'validation_failed',
        /^path_prefix: must start with \//,
      ],
      ['a prefix with a trailing slash', { path_prefix: '/weather/' }, 'validation_failed', /^path_prefix:/],
      ['the prefix /', { path_prefix: '/' }, 'validation_failed', /^path_prefix:/],
      ['a prefix with //', { path_prefix: '/a//b' }, 'validation_failed', /empty segment/],
      ['a prefix with ..', { path_prefix: '/a/../b' }, 'validation_failed', /\.\. segments/],
      ['a prefix with a space', { path_prefix: '/a b' }, 'validation_failed', /^path_prefix:/],
      ['a prefix under a reserved path', { path_prefix: '/v1/weather' }, 'validation_failed', /reserved path/],
      ['a timeout under 100 ms', { timeout_ms: 99 }, 'validation_failed', /^timeout_ms:/],
      ['a timeout over 5 minutes', { timeout_ms: 300_001 }, 'validation_failed', /^timeout_ms:/],
      ['a fractional timeout', { timeout_ms: 1000.5 }, 'validation_failed', /^timeout_ms: must be whole milliseconds/],
      ['an unknown failure policy', { failure_policy: 'fail-soft' }, 'validation_failed', /^failure_policy:/],
      ['an unknown metric', { metered_metrics: ['storage'] }, 'validation_failed', /^metered_metrics\.0:/],
      ['a bad plugin name', { plugins: [{ name: 'Not A Name' }] }, 'validation_failed', /^plugins\.0\.name:/],
      ['an unknown field', { upstream: 'https://a.example' }, 'validation_failed', /upstream/],
    ];

    it.each(cases)('%s', async (_label, change, code, message) => {
      const before = await registryState();
      const response = await call(operator, 'POST', '/v1/apis', { ...valid(), ...change });
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ code, message: expect.stringMatching(message) });
      expect(await registryState()).toEqual(before);
    });

    it('the same checks on a change, and an empty change', async () => {
      const existing = valid();
      expect((await call(operator, 'POST', '/v1/apis', existing)).status).toBe(201);
      const before = await registryState();
      for (const [change, code] of [
        [{ upstreams: ['gopher://old.example'] }, 'invalid_upstream'],
        [{ upstreams: [] }, 'validation_failed'],
        [{ hosts: ['a.example:80'] }, 'validation_failed'],
        [{ slug: 'metrics' }, 'validation_failed'],
        [{ timeout_ms: 0 }, 'validation_failed'],
        [{}, 'validation_failed'],
      ] as const) {
        const response = await call(operator, 'PATCH', `/v1/apis/${existing.slug}`, change);
        expect(response.status, JSON.stringify(change)).toBe(400);
        expect(response.body.error.code, JSON.stringify(change)).toBe(code);
      }
      expect(await registryState()).toEqual(before);
    });
  });

  describe('plugin lists: known plugins, once each, with a configuration the plugin accepts', () => {
    const valid = () => ({ name: 'Plugged', slug: slug('plugged'), upstreams: ['https://plugged.example'] });
    const cases: [string, unknown[], RegExp][] = [
      [
        'an unknown plugin',
        [{ name: 'cors' }, { name: 'geo-block', config: {} }],
        /^plugins\.1\.name: no plugin named geo-block \(this installation has cors, request-size-limit\)$/,
      ],
      [
        'a configuration cors refuses, with every one of its messages',
        [{ name: 'cors', config: { origins: ['https://app.example/path'], credentials: 'yes' } }],
        /^plugins\.0\.config: origins: each is \* or scheme:\/\/host\[:port\] without a path; credentials: true or false$/,
      ],
      [
        'credentials with any origin',
        [{ name: 'cors', config: { credentials: true } }],
        /^plugins\.0\.config: credentials: not with origins "\*"/,
      ],
      [
        'a request-size limit without max_bytes',
        [{ name: 'request-size-limit' }],
        /^plugins\.0\.config: max_bytes: a whole number of bytes, 0 or more$/,
      ],
      [
        'a plugin listed twice',
        [{ name: 'cors' }, { name: 'cors', config: {} }],
        /^plugins\.1\.name: cors is listed twice$/,
      ],
      ['a configuration that is no object', [{ name: 'cors', config: 'origins=*' }], /^plugins\.0\.config:/],
    ];

    it.each(cases)('refuses %s with 400 validation_failed, writing nothing', async (_label, plugins, message) => {
      const before = await registryState();
      const created = await call(operator, 'POST', '/v1/apis', { ...valid(), plugins });
      expect(created.status).toBe(400);
      expect(created.body.error).toMatchObject({ code: 'validation_failed', message: expect.stringMatching(message) });
      expect(await registryState()).toEqual(before);
    });

    it('accepts a valid list in its order, returns it, replaces it on a change and refuses a bad change', async () => {
      const api = valid();
      const plugins = [
        { name: 'request-size-limit', config: { max_bytes: 1_048_576 } },
        { name: 'cors', config: { origins: ['https://app.example'], credentials: true, max_age_seconds: 60 } },
      ];
      const created = await call(operator, 'POST', '/v1/apis', { ...api, plugins });
      expect(created.status).toBe(201);
      expect(created.body.plugins).toEqual(plugins);
      expect((await call(operator, 'GET', `/v1/apis/${api.slug}`)).body.plugins).toEqual(plugins);
      const routed = (await listApiDefinitions(testApi.database)).find((entry) => entry.slug === api.slug);
      expect(routed?.plugins).toEqual(plugins);

      const before = await registryState();
      for (const bad of cases.map(([, list]) => list)) {
        const refused = await call(operator, 'PATCH', `/v1/apis/${api.slug}`, { plugins: bad });
        expect(refused.status, JSON.stringify(bad)).toBe(400);
        expect(refused.body.error.code).toBe('validation_failed');
      }
      expect(await registryState()).toEqual(before);

      const reordered = await call(operator, 'PATCH', `/v1/apis/${api.slug}`, {
        plugins: [{ name: 'cors' }, plugins[0]],
      });
      expect(reordered.status).toBe(200);
      expect(reordered.body.plugins).toEqual([{ name: 'cors', config: {} }, plugins[0]]);
      const cleared = await call(operator, 'PATCH', `/v1/apis/${api.slug}`, { plugins: [] });
      expect(cleared.body.plugins).toEqual([]);
    });

    it('GET /v1/plugins lists the plugins by name with a description, to anyone signed in', async () => {
      const listed = await call(teamAdmin, 'GET', '/v1/plugins');
      expect(listed.status).toBe(200);
      expect(listed.body.plugins.map((plugin: { name: string }) => plugin.name)).toEqual([
        'cors',
        'request-size-limit',
      ]);
      for (const plugin of listed.body.plugins) expect(plugin.description).toMatch(/\w{3,}/);
      expect((await call(undefined, 'GET', '/v1/plugins')).status).toBe(401);
    });
  });

  describe('never lets two APIs claim one host or one path prefix', () => {
    let first: { slug: string; host: string; prefix: string };

    beforeAll(async () => {
      first = { slug: slug('first'), host: `${slug('first')}.example.com`, prefix: `/${slug('first')}/v1` };
      const created = await call(operator, 'POST', '/v1/apis', {
        name: 'First',
        slug: first.slug,
        upstreams: ['https://first.example'],
        hosts: [first.host],
        path_prefix: first.prefix,
      });
      expect(created.status).toBe(201);
    });

    const cases: [string, (f: typeof first) => Record<string, unknown>, string][] = [
      ['the same slug', (f) => ({ slug: f.slug }), 'slug_taken'],
      ['the same host, in other case', (f) => ({ hosts: ['other.example', f.host.toUpperCase()] }), 'host_taken'],
      ['the same path prefix', (f) => ({ path_prefix: f.prefix }), 'path_prefix_taken'],
      ["a path prefix that is the other's /<slug>", (f) => ({ path_prefix: `/${f.slug}` }), 'path_prefix_taken'],
    ];

    it.each(cases)('%s: 409 on create and on change', async (_label, claim, code) => {
      const before = await registryState();
      const created = await call(operator, 'POST', '/v1/apis', {
        name: 'Second',
        slug: slug('second'),
        upstreams: ['https://second.example'],
        ...claim(first),
      });
      expect(created.status).toBe(409);
      expect(created.body.error.code).toBe(code);
      expect(created.body.error.message).toContain(first.slug);
      expect(await registryState()).toEqual(before);
    });

    it("a slug whose /<slug> is the other's path prefix: 409 slug_taken", async () => {
      const oneSegment = `/${slug('segment')}`;
      const owner = slug('owner');
      expect(
        (
          await call(operator, 'POST', '/v1/apis', {
            name: 'Owner',
            slug: owner,
            upstreams: ['https://o.example'],
            path_prefix: oneSegment,
          })
        ).status,
      ).toBe(201);
      const before = await registryState();
      const clash = await call(operator, 'POST', '/v1/apis', {
        name: 'Clash',
        slug: oneSegment.slice(1),
        upstreams: ['https://c.example'],
      });
      expect(clash.status).toBe(409);
      expect(clash.body.error).toMatchObject({ code: 'slug_taken', details: { prefix: oneSegment, api: owner } });
      expect(await registryState()).toEqual(before);
    });

    it('on a change too, while the API may keep or reuse its own', async () => {
      const second = slug('second');
      expect(
        (await call(operator, 'POST', '/v1/apis', { name: 'Second', slug: second, upstreams: ['https://s.example'] }))
          .status,
      ).toBe(201);
      const before = await registryState();
      for (const [change, code] of [
        [{ hosts: [first.host] }, 'host_taken'],
        [{ path_prefix: first.prefix }, 'path_prefix_taken'],
        [{ slug: first.slug }, 'slug_taken'],
      ] as const) {
        const response = await call(operator, 'PATCH', `/v1/apis/${second}`, change);
        expect(response.status, JSON.stringify(change)).toBe(409);
        expect(response.body.error.code).toBe(code);
      }
      expect(await registryState()).toEqual(before);
      // Its own slug as its path prefix is no conflict, nor is setting its own host again.
      const own = await call(operator, 'PATCH', `/v1/apis/${first.slug}`, {
        hosts: [first.host],
        path_prefix: `/${first.slug}`,
      });
      expect(own.status).toBe(200);
      const restored = await call(operator, 'PATCH', `/v1/apis/${first.slug}`, { path_prefix: first.prefix });
      expect(restored.status).toBe(200);
    });
  });

  describe('who may do what', () => {
    let api: { id: string; slug: string };

    beforeAll(async () => {
      const created = await call(operator, 'POST', '/v1/apis', {
        name: 'Guarded',
        slug: slug('guarded'),
        upstreams: ['https://internal.example:8443/base'],
        hosts: [`${slug('guarded')}.example.com`],
      });
      api = created.body;
    });

    it('anyone signed in sees where an API is served, not its upstreams or policy', async () => {
      const shown = await call(teamAdmin, 'GET', `/v1/apis/${api.slug}`);
      expect(shown.status).toBe(200);
      expect(Object.keys(shown.body).sort()).toEqual(
        ['created_at', 'hosts', 'id', 'name', 'path_prefix', 'slug', 'updated_at'].sort(),
      );
      const listed = await call(teamAdmin, 'GET', '/v1/apis');
      const entry = listed.body.apis.find((item: { slug: string }) => item.slug === api.slug);
      expect(entry).toEqual(shown.body);
      expect(JSON.stringify(listed.body)).not.toContain('internal.example');
    });

    it('nobody signed out', async () => {
      expect((await call(undefined, 'GET', '/v1/apis')).status).toBe(401);
      expect(
        (await call(undefined, 'POST', '/v1/apis', { name: 'X', slug: 'x', upstreams: ['https://x.example'] })).status,
      ).toBe(401);
    });

    it.each([
      ['POST', '/v1/apis', { name: 'Mine', slug: 'team-admin-api', upstreams: ['https://mine.example'] }],
      ['PATCH', '/v1/apis/:api', { timeout_ms: 1_000 }],
      ['DELETE', '/v1/apis/:api', undefined],
      ['DELETE', '/v1/apis/:api?force=true', undefined],
    ])(
      'a team admin who is no operator: %s %s is 403 forbidden, audited, nothing written',
      async (method, path, body) => {
        const before = await registryState();
        const response = await call(teamAdmin, method, path.replace(':api', api.slug), body);
        expect(response.status).toBe(403);
        expect(response.body.error).toMatchObject({ code: 'forbidden', details: { permission: 'apis:manage' } });
        const last = await testApi.database.query<{
          action: string;
          outcome: string;
          actor_user_id: string;
          details: { permission: string };
        }>('SELECT action, outcome, actor_user_id, details FROM audit_log ORDER BY seq DESC LIMIT 1');
        expect(last.rows[0]).toMatchObject({
          action: 'authz.denied',
          outcome: 'denied',
          actor_user_id: teamAdmin.id,
          details: { permission: 'apis:manage' },
        });
        expect(await registryState()).toEqual(before);
      },
    );
  });

  describe('deleting an API that keys are limited to', () => {
    it('is refused with 409 api_in_use; with force, keys left with no API are revoked, the others keep theirs', async () => {
      const [target, kept] = [slug('target'), slug('kept')];
      const ids: Record<string, string> = {};
      for (const name of [target, kept]) {
        const created = await call(operator, 'POST', '/v1/apis', {
          name,
          slug: name,
          upstreams: ['https://t.example'],
        });
        ids[name] = created.body.id;
      }
      const team = await call(teamAdmin, 'GET', '/v1/teams');
      const teamId = team.body.teams[0].id as string;
      // Limiting keys to APIs belongs to the keys domain, which has no route for it yet: set it directly.
      const [onlyTarget, both, onlyTargetPrefix] = await testApi.database.transaction(async (tx) => {
        const one = await createApiKey(tx, { teamId, name: 'only-target' });
        const two = await createApiKey(tx, { teamId, name: 'both' });
        await tx.query('INSERT INTO api_key_apis (api_key_id, api_id) VALUES ($1, $3), ($2, $3), ($2, $4)', [
          one.summary.id,
          two.summary.id,
          ids[target],
          ids[kept],
        ]);
        return [one.summary.id, two.summary.id, one.summary.prefix];
      });

      const before = await registryState();
      const refused = await call(operator, 'DELETE', `/v1/apis/${target}`);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({ code: 'api_in_use', details: { keys: 2 } });
      expect(await registryState()).toEqual(before);

      const events: KeyEvent[] = [];
      const stopListening = keyEvents.subscribe((event) => events.push(event));
      const forced = await call(operator, 'DELETE', `/v1/apis/${target}?force=true`);
      stopListening();
      // Gateways drop the revoked key from their caches at once (tg_live_<lookup id>).
      expect(events).toEqual([{ type: 'invalidate', lookupId: onlyTargetPrefix?.split('_')[2] }]);
      expect(forced).toEqual({ status: 200, body: { id: ids[target], slug: target, revoked_key_ids: [onlyTarget] } });
      const keys = await testApi.database.query<{ id: string; revoked: boolean; apis: string[] | null }>(
        `SELECT k.id, k.revoked_at IS NOT NULL AS revoked,
           (SELECT array_agg(l.api_id::text) FROM api_key_apis l WHERE l.api_key_id = k.id) AS apis
         FROM api_keys k WHERE k.id = ANY($1::uuid[])`,
        [[onlyTarget, both]],
      );
      const byId = Object.fromEntries(keys.rows.map((row) => [row.id, row]));
      expect(byId[onlyTarget ?? '']).toMatchObject({ revoked: true, apis: null });
      expect(byId[both ?? '']).toMatchObject({ revoked: false, apis: [ids[kept]] });
      const entry = await testApi.database.query<{ details: Record<string, unknown> }>(
        `SELECT details FROM audit_log WHERE action = 'api.deleted' AND target_id = $1`,
        [ids[target]],
      );
      expect(entry.rows[0]?.details).toMatchObject({ force: true, revoked_key_ids: [onlyTarget] });
    });

    it('answers 400 to a force that is not true or false', async () => {
      const response = await call(operator, 'DELETE', '/v1/apis/whatever?force=maybe');
      expect(response.body.error.code).toBe('validation_failed');
    });
  });
});

describe(`the config bus (${expectedCounterDriver})`, () => {
  it('in process: delivers each version to every subscriber until it unsubscribes', async () => {
    const local = createInProcessConfigBus();
    const seen: number[] = [];
    const stop = local.subscribe((version) => seen.push(version));
    const both = collect(local, 2);
    await local.publish(7);
    await local.publish(8);
    stop();
    await local.publish(9);
    expect(seen).toEqual([7, 8]);
    expect(await both).toEqual([7, 8]);
    await local.close();
  });

  it('in process: one failing listener does not keep the version from the others', async () => {
    const local = createInProcessConfigBus({ logger: silentLogger() });
    local.subscribe(() => {
      throw new Error('listener bug');
    });
    const received = collect(local, 1);
    await local.publish(3);
    expect(await received).toEqual([3]);
    await local.close();
  });

  it.runIf(testRedisUrl)('over Redis: a version published by one process reaches a subscriber in another', async () => {
    const channel = uniqueKey('config');
    const config = { driver: 'redis' as const, url: testRedisUrl ?? '' };
    const options = { logger: silentLogger(), channel, keyPrefix: `${channel}:` };
    const [controlPlane, gateway] = await Promise.all([
      openRedisConfigBus(config, options),
      openRedisConfigBus(config, options),
    ]);
    try {
      const received = collect(gateway, 2);
      // SUBSCRIBE goes out when the first listener arrives; let it land before publishing.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await controlPlane.publish(41);
      await controlPlane.publish(42);
      expect(await received).toEqual([41, 42]);
    } finally {
      await Promise.all([controlPlane.close(), gateway.close()]);
    }
  });

  it.runIf(testRedisUrl)(
    'over Redis: a subscriber cut off while a version was published gets it when it is back',
    async () => {
      const target = new URL(testRedisUrl ?? '');
      const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
      const channel = uniqueKey('config');
      const options = { logger: silentLogger(), channel, keyPrefix: `${channel}:` };
      const controlPlane = await openRedisConfigBus({ driver: 'redis', url: testRedisUrl ?? '' }, options);
      const gateway = await openRedisConfigBus({ driver: 'redis', url: `redis://127.0.0.1:${proxy.port}` }, options);
      try {
        const seen: number[] = [];
        gateway.subscribe((version) => seen.push(version));
        await new Promise((resolve) => setTimeout(resolve, 100));
        await controlPlane.publish(5);
        await expect.poll(() => seen, { timeout: 5_000 }).toEqual([5]);
        await proxy.cut();
        await controlPlane.publish(6);
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(seen).toEqual([5]);
        await proxy.restore();
        await expect.poll(() => seen, { timeout: 10_000 }).toEqual([5, 6]);
        // An older version published late does not lower what a reconnecting subscriber is told.
        await controlPlane.publish(4);
        await expect.poll(() => seen, { timeout: 5_000 }).toEqual([5, 6, 4]);
        await proxy.cut();
        await proxy.restore();
        await expect.poll(() => seen, { timeout: 10_000 }).toEqual([5, 6, 4, 6]);
      } finally {
        await Promise.all([controlPlane.close(), gateway.close()]);
        await proxy.close();
      }
    },
  );
});
