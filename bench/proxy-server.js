// Servers for the gateway-proxy bench of bench/run.js, each in its own process.
// `upstream`: node:http answering 60 bytes. `bare`: the baseline reverse proxy, node:http handing
// each request to an undici Pool.stream with keep-alive (what ARCHITECTURE.md measures against).
// `gateway`: Tollgate's gateway (request id, access log at silent, metrics, routing, proxy) routing
// /bench/* to the upstream. argv[3] is the upstream's URL for the two proxies.
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
