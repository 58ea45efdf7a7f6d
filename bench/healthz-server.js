// A server for bench/run.js, in its own process so the load generator does not share its CPU.
// `bare`: node:http answering {"status":"ok"}; `api`: Tollgate's control-plane API (embedded drivers,
// logs off), whose /healthz passes the request id, access log, metrics and error middleware.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const kind = process.argv[2];
let close;
if (kind === 'bare') {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end('{"status":"ok"}');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send(`http://127.0.0.1:${server.address().port}/healthz`);
  close = () => new Promise((resolve) => server.close(resolve));
} else {
  const { createApiApp, createLogger, listen, loadConfig, openBackends } = await import('@tollgate/services');
  const dataDir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const config = loadConfig({ TOLLGATE_DATA_DIR: dataDir, TOLLGATE_LOG_LEVEL: 'silent' });
  const logger = createLogger({ level: 'silent' });
  const backends = await openBackends(config, { logger });
  const { app } = createApiApp({
    config,
    database: backends.database,
    counters: backends.counters,
    logger,
    keyring: backends.keyring,
    mailer: backends.mailer,
  });
  const server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  process.send(`${server.url}/healthz`);
  close = async () => {
    await server.close(1_000);
    await backends.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
process.once('SIGTERM', async () => {
  await close();
  process.exit(0);
});
