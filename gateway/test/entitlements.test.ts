import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PluginDefinition, PluginRequest } from '@tollgate/plugins';
import {
  createApi,
  createApiKey,
  createLogger,
  listApiDefinitions,
  listen,
  loadTeamPolicy,
  openTeamPolicyEvents,
  type RunningServer,
  type TeamPolicyEvents,
} from '@tollgate/services';
import {
  callApi,
  expectedCounterDriver,
  expectedDatabaseDriver,
  type SignedInAccount,
  signUp,
  startTestApi,
  type TestApi,
  testCounterConfig,
} from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { createKeyVerifier, type KeyVerifier } from '../src/keys/key-verifier.js';
import { createMemoryLimiter } from '../src/limits/memory-limiter.js';
import { createTeamPolicyCache, type TeamPolicyCache } from '../src/limits/team-policies.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

const logger = createLogger({ level: 'silent' });
const ttlMs = 60_000;
let api: TestApi;
let upstream: Server;
let gateway: GatewayApp;
let gatewayServer: RunningServer;
/** A gateway with keys but no limits: it knows no team policy, so it sends no plan headers. */
let keysOnly: GatewayApp;
let keysOnlyServer: RunningServer;
let verifier: KeyVerifier;
let policies: TeamPolicyCache;
/** Two buses on one channel: the API publishes on one, the gateway listens on the other (Redis with TEST_REDIS_URL). */
let apiEvents: TeamPolicyEvents;
let gatewayEvents: TeamPolicyEvents;
/** The gateway's clock for its policy cache: moved past the TTL to see a plan edit arrive. */
let clock = Date.now();
let operator: SignedInAccount;
let owner: SignedInAccount;
let team: { id: string; slug: string };
let key: string;

/** What the probe plugin saw in each hook, copied at the time. */
const seen: { hook: string; plan: string | undefined; entitlements: PluginRequest['entitlements'] }[] = [];
const probe: PluginDefinition<Record<string, never>> = {
  name: 'entitlement-probe',
  description: 'records what its hooks see; tries to set the plan headers itself',
  parseConfig: () => ({ ok: true, config: {} }),
  create: () => ({
    name: 'entitlement-probe',
    onPreAuth(request) {
      seen.push({ hook: 'preAuth', plan: request.plan, entitlements: request.entitlements });
      return { action: 'continue' };
    },
    onRequest(request) {
      seen.push({ hook: 'request', plan: request.plan, entitlements: request.entitlements });
      return {
        action: 'continue',
        headers: {
          'Tollgate-Entitlements': 'sso',
          'tollgate-plan': 'enterprise',
          'X-Probe-Sso': String(request.entitlements?.sso),
        },
      };
    },
  }),
};

beforeAll(async () => {
  const channel = `tgtest:${randomBytes(4).toString('hex')}:team-policies`;
  apiEvents = await openTeamPolicyEvents(testCounterConfig(), { logger, channel });
  gatewayEvents =
    apiEvents.driver === 'memory' ? apiEvents : await openTeamPolicyEvents(testCounterConfig(), { logger, channel });
  api = await startTestApi({ teamPolicyEvents: apiEvents });
  // Echoes every header it received, each with all its values, so a duplicate would show.
  upstream = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headersDistinct));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  await api.database.transaction(async (tx) => {
    await createApi(tx, { slug: 'plan-api', name: 'Plan', upstreams: [upstreamUrl] });
    await createApi(tx, { slug: 'probe-api', name: 'Probe', upstreams: [upstreamUrl] });
  });
  // The control plane only accepts first-party plugin names; the probe is added to the definition here.
  const apis = (await listApiDefinitions(api.database)).map((definition) =>
    definition.slug === 'probe-api'
      ? { ...definition, plugins: [{ name: 'entitlement-probe', config: {} }] }
      : definition,
  );
  verifier = createKeyVerifier({ database: api.database, logger });
  policies = createTeamPolicyCache({
    load: (teamId) => loadTeamPolicy(api.database, teamId),
    events: gatewayEvents,
    ttlMs,
    now: () => clock,
  });
  gateway = createGatewayApp({
    logger,
    trustProxy: false,
    routing: staticRouting(apis),
    keys: verifier,
    limits: { limiter: createMemoryLimiter(), policies },
    plugins: [probe as PluginDefinition<never>],
  });
  gatewayServer = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });
  keysOnly = createGatewayApp({ logger, trustProxy: false, routing: staticRouting(apis), keys: verifier });
  keysOnlyServer = await listen(keysOnly.app.callback(), { host: '127.0.0.1', port: 0 });

  operator = await signUp(api, 'operator', { installationRole: 'admin' });
  owner = await signUp(api, 'owner');
  const created = await callApi(api, owner, 'POST', '/v1/teams', { name: 'Entitled team' });
  team = { id: created.body.id, slug: created.body.slug };
  key = (await api.database.transaction((tx) => createApiKey(tx, { teamId: team.id, name: 'entitled' }))).key;
});

afterAll(async () => {
  policies?.close();
  await gatewayServer?.close(1_000);
  await keysOnlyServer?.close(1_000);
  await gateway?.close();
  await keysOnly?.close();
  await verifier?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await api?.dispose();
  await apiEvents?.close();
  if (gatewayEvents !== apiEvents) await gatewayEvents?.close();
});

/** The headers the upstream received for one call through a gateway (all values of each). */
async function upstreamSaw(
  path = '/plan-api/thing',
  headers: Record<string, string> = {},
  server: RunningServer = gatewayServer,
): Promise<Record<string, string[]>> {
  const response = await fetch(`${server.url}${path}`, { headers: { ...headers, authorization: `Bearer ${key}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, string[]>;
}

async function eventually<T>(read: () => Promise<T>, until: (value: T) => boolean, timeoutMs = 3_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (until(value) || Date.now() - started > timeoutMs) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const proEntitlements = 'max_team_members=10, sso=?0, support="email"';

describe(`plan entitlements at the gateway (${expectedDatabaseDriver}, ${expectedCounterDriver})`, () => {
  it('sends the plan and an empty Dictionary upstream for a team on the default plan without entitlements', async () => {
    const saw = await upstreamSaw();
    expect(saw['tollgate-plan']).toEqual(['free']);
    expect(saw['tollgate-entitlements']).toEqual(['']);
  });

  it('replaces plan headers a client sends (any case), never forwarding them', async () => {
    const saw = await upstreamSaw('/plan-api/thing', {
      'Tollgate-Entitlements': 'sso, max_team_members=1000',
      'TOLLGATE-PLAN': 'enterprise',
    });
    expect(saw['tollgate-plan']).toEqual(['free']);
    expect(saw['tollgate-entitlements']).toEqual(['']);
  });

  it('strips client plan headers on a gateway that knows no team policy, and sends none', async () => {
    const saw = await upstreamSaw(
      '/plan-api/thing',
      { 'tollgate-entitlements': 'sso', 'tollgate-plan': 'enterprise' },
      keysOnlyServer,
    );
    expect(saw['tollgate-plan']).toBeUndefined();
    expect(saw['tollgate-entitlements']).toBeUndefined();
  });

  it('an edit of the default plan reaches the gateway when the cached policy expires', async () => {
    const edited = await callApi(api, operator, 'PATCH', '/v1/plans/free', {
      entitlements: { beta: true, region: 'Zürich', max_projects: 3 },
    });
    expect(edited.status).toBe(200);
    // No team subscribes to it: changed in place.
    expect(edited.body.new_version).toBe(false);
    // Cached: the plan edit is not announced, so the gateway still sends what it loaded.
    expect((await upstreamSaw())['tollgate-entitlements']).toEqual(['']);
    clock += ttlMs + 1;
    const saw = await upstreamSaw();
    expect(saw['tollgate-plan']).toEqual(['free']);
    expect(saw['tollgate-entitlements']).toEqual(['beta, max_projects=3, region=%"Z%c3%bcrich"']);
  });

  it("a subscription to Pro carries Pro's entitlements on the next calls, announced at once", async () => {
    expect((await callApi(api, operator, 'POST', '/v1/plans/seed')).status).toBe(200);
    // Pro has a trial: the subscription starts at once, without a card.
    const subscribed = await callApi(api, owner, 'POST', `/v1/teams/${team.slug}/subscription`, { plan: 'pro' });
    expect(subscribed.status).toBe(201);
    // The TTL is a minute of a clock that stands still: only the invalidation can bring the change.
    const saw = await eventually(upstreamSaw, (headers) => headers['tollgate-plan']?.[0] === 'pro');
    expect(saw['tollgate-plan']).toEqual(['pro']);
    expect(saw['tollgate-entitlements']).toEqual([proEntitlements]);
  });

  it('a subscriber keeps the entitlements of its plan version when the plan gets a new one', async () => {
    const edited = await callApi(api, operator, 'PATCH', '/v1/plans/pro', {
      entitlements: { support: 'email', sso: true, max_team_members: 10 },
    });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ new_version: true, plan: { version: 2 } });
    policies.invalidate(team.id);
    expect((await upstreamSaw())['tollgate-entitlements']).toEqual([proEntitlements]);
  });

  it("plugins' request hooks see the plan and its entitlements; the gateway's plan headers win over theirs", async () => {
    seen.length = 0;
    const saw = await upstreamSaw('/probe-api/thing', { 'tollgate-entitlements': 'sso', 'x-probe-sso': 'client' });
    expect(seen).toEqual([
      { hook: 'preAuth', plan: undefined, entitlements: undefined },
      { hook: 'request', plan: 'pro', entitlements: { max_team_members: 10, sso: false, support: 'email' } },
    ]);
    // A plugin's header replaces the client's of the same name, whatever its case.
    expect(saw['x-probe-sso']).toEqual(['false']);
    expect(saw['tollgate-plan']).toEqual(['pro']);
    expect(saw['tollgate-entitlements']).toEqual([proEntitlements]);
  });
});
