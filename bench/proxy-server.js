// Servers for the gateway-proxy bench of bench/run.js, each in its own process.
// `upstream`: node:http answering 60 bytes. `bare`: the baseline reverse proxy, node:http handing
// each request to an undici Pool.stream with keep-alive (what ARCHITECTURE.md measures against).
// `gateway`: Tollgate's gateway (request id, metrics, routing, proxy) routing /bench/* to the
// upstream, no keys or limits. `full`: the whole request path on real backends (PGlite and in-process
// counters, or PostgreSQL with BENCH_DATABASE_URL and Redis with BENCH_REDIS_URL): API key check, the team's plan limits
// and quota (one limiter round trip), metering. argv[3] is the upstream's URL for the proxies.
import { createServer } from 'node:http';

const kind = process.argv[2];
const upstreamUrl = process.argv[3];
let close;
if (kind === 'upstream') {
  const body = Buffer.from(`{"ok":true,"padding":"${'x'.repeat(36)}"}`);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send(`http://127.0.0.1:${server.address().port}`);
  close = () => new Promise((resolve) => server.close(resolve));
} else if (kind === 'bare') {
  const { Pool } = await import('undici');
  const pool = new Pool(upstreamUrl, { connections: 128 });
  const server = createServer((req, res) => {
    pool
      .stream(
        { path: req.url.replace(/^\/bench/, '') || '/', method: req.method, headers: req.headers, body: null },
        ({ statusCode, headers }) => {
          res.writeHead(statusCode, headers);
          return res;
        },
      )
      .catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send(`http://127.0.0.1:${server.address().port}/bench/item`);
  close = async () => {
    await new Promise((resolve) => server.close(resolve));
    await pool.close();
  };
} else if (kind === 'full') {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const services = await import('@tollgate/services');
  const gatewayPackage = await import('@tollgate/gateway');
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-gateway-'));
  // With BENCH_DATABASE_URL (a server URL), a fresh database on it, dropped afterwards.
  let databaseUrl;
  let dropDatabase = async () => {};
  if (process.env.BENCH_DATABASE_URL) {
    const { default: pg } = await import('pg');
    const name = `tollgate_bench_${Date.now()}`;
    const admin = new pg.Client({ connectionString: process.env.BENCH_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(process.env.BENCH_DATABASE_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      const client = new pg.Client({ connectionString: process.env.BENCH_DATABASE_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    };
  }
  const config = services.loadConfig({
    TOLLGATE_DATA_DIR: dataDir,
    TOLLGATE_LOG_LEVEL: 'silent',
    ...(process.env.BENCH_REDIS_URL ? { REDIS_URL: process.env.BENCH_REDIS_URL } : {}),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  });
  const logger = services.createLogger({ level: 'silent' });
  const backends = await services.openBackends(config, { logger });
  const db = backends.database;
  const key = await db.transaction(async (tx) => {
    await services.createApi(tx, { slug: 'bench', name: 'Bench', upstreams: [upstreamUrl] });
    const team = await tx.query(`INSERT INTO teams (name, slug) VALUES ('Bench', 'bench') RETURNING id`);
    const plan = await tx.query(
      `INSERT INTO plans (slug, name, rate_limit_per_second, rate_limit_per_hour, monthly_call_quota)
       VALUES ('bench', 'Bench', 1000000, 100000000, 1000000000) RETURNING id`,
    );
    await tx.query(
      `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
       VALUES ($1, $2, 'active', 'USD', 'month', now(), now() + interval '1 month')`,
      [team.rows[0].id, plan.rows[0].id],
    );
    return (await services.createApiKey(tx, { teamId: team.rows[0].id, name: 'bench' })).key;
  });
  const routing = await gatewayPackage.liveRouting({ load: () => services.loadRoutingConfig(db), logger });
  const keys = gatewayPackage.createKeyVerifier({ database: db, events: backends.keyEvents, logger });
  const limiter = await gatewayPackage.openLimiter(config.counters, { logger });
  const usageStore = await services.openUsageCounterStore(config.counters, { logger });
  const usage = gatewayPackage.createUsageRecorder({ store: usageStore, logger });
  const gateway = gatewayPackage.createGatewayApp({
    logger,
    trustProxy: false,
    routing,
    keys,
    limits: {
      limiter,
      policies: gatewayPackage.createTeamPolicyCache({ load: (teamId) => services.loadTeamPolicy(db, teamId) }),
    },
    usage,
  });
  const server = await services.listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });
  process.send({ url: `${server.url}/bench/item`, headers: { authorization: `Bearer ${key}` } });
  close = async () => {
    await server.close(1_000);
    await gateway.close();
    await usage.close();
    await usageStore.close();
    await keys.close();
    await limiter.close();
    await routing.close();
    await backends.close();
    await dropDatabase();
    rmSync(dataDir, { recursive: true, force: true });
  };
} else {
  const { createLogger, listen } = await import('@tollgate/services');
  const { createGatewayApp, staticRouting } = await import('@tollgate/gateway');
  const gateway = createGatewayApp({
    logger: createLogger({ level: 'silent' }),
    trustProxy: false,
    routing: staticRouting([
      {
        id: 'bench',
        slug: 'bench',
        name: 'Bench',
        hosts: [],
        pathPrefix: null,
        upstreams: [upstreamUrl],
        timeoutMs: 30_000,
        failurePolicy: 'fail-closed',
        meteredMetrics: ['calls', 'bandwidth'],
        plugins: [],
        updatedAt: new Date(),
      },
    ]),
  });
  const server = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });
  process.send(`${server.url}/bench/item`);
  close = async () => {
    await server.close(1_000);
    await gateway.close();
  };
}
process.once('SIGTERM', async () => {
  await close();
  process.exit(0);
});
