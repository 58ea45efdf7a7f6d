// Benchmarks, each reported as a ratio against a baseline measured in the same run (machines here are
// shared and noisy, so absolute numbers mean little). Bounded in count and time; loopback only.
//
//   cli-startup   `tollgate --version` and `tollgate --help` against `node -e 0`
//   api-healthz   GET /healthz through the API's full middleware stack against a bare node:http server
//   gateway-proxy GET through the gateway (routing + proxy, no keys or limits yet) against a bare
//                 node:http + undici reverse proxy to the same upstream
import { execFileSync, fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../cli/bin/run.js', import.meta.url));
const serverScript = fileURLToPath(new URL('./healthz-server.js', import.meta.url));
const proxyScript = fileURLToPath(new URL('./proxy-server.js', import.meta.url));

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function timeCommand(args, runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    execFileSync(process.execPath, args, { stdio: 'ignore' });
    samples.push(performance.now() - started);
  }
  return median(samples);
}

async function startServer(kind, script = serverScript, extra = []) {
  const child = fork(script, [kind, ...extra], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const url = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** Sends `total` GETs over `concurrency` keep-alive connections; returns requests/s and p99 (ms). */
async function load(url, total, concurrency) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let sent = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      request(url, { agent }, (response) => {
        response.resume();
        response.on('end', () => {
          latencies.push(performance.now() - started);
          resolve();
        });
      })
        .on('error', reject)
        .end();
    });
  const worker = async () => {
    while (sent < total) {
      sent++;
      await one();
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { rps: total / seconds, p99: latencies[Math.floor(latencies.length * 0.99)] };
}

const results = [];

// cli-startup
{
  const runs = 15;
  timeCommand([bin, '--version'], 2); // warm the file cache
  const baseline = timeCommand(['-e', '0'], runs);
  const version = timeCommand([bin, '--version'], runs);
  const help = timeCommand([bin, '--help'], runs);
  results.push({
    bench: 'cli-startup',
    case: 'tollgate --version',
    ms: version,
    baseline_ms: baseline,
    ratio: version / baseline,
  });
  results.push({
    bench: 'cli-startup',
    case: 'tollgate --help',
    ms: help,
    baseline_ms: baseline,
    ratio: help / baseline,
  });
}

// api-healthz
{
  const total = 15_000;
  const concurrency = 32;
  const measure = async (kind) => {
    const server = await startServer(kind);
    try {
      await load(server.url, 2_000, concurrency); // warm-up
      return await load(server.url, total, concurrency);
    } finally {
      await server.stop();
    }
  };
  // Alternate the two servers and keep each one's median round, so the load generator's own JIT
  // warm-up and the machine's noise fall on both alike.
  const rounds = { bare: [], api: [] };
  for (let round = 0; round < 3; round++) {
    for (const kind of ['bare', 'api']) rounds[kind].push(await measure(kind));
  }
  const middle = (list) => [...list].sort((a, b) => a.rps - b.rps)[1];
  const bare = middle(rounds.bare);
  const api = middle(rounds.api);
  results.push({
    bench: 'api-healthz',
    case: `GET /healthz, ${total} requests, ${concurrency} connections`,
    rps: Math.round(api.rps),
    baseline_rps: Math.round(bare.rps),
    ratio: api.rps / bare.rps,
    p99_ms: api.p99,
    baseline_p99_ms: bare.p99,
  });
}

// gateway-proxy
{
  const total = 15_000;
  const concurrency = 32;
  const upstream = await startServer('upstream', proxyScript);
  const measure = async (kind) => {
    const server = await startServer(kind, proxyScript, [upstream.url]);
    try {
      await load(server.url, 2_000, concurrency); // warm-up
      return await load(server.url, total, concurrency);
    } finally {
      await server.stop();
    }
  };
  const rounds = { bare: [], gateway: [] };
  try {
    for (let round = 0; round < 3; round++) {
      for (const kind of ['bare', 'gateway']) rounds[kind].push(await measure(kind));
    }
  } finally {
    await upstream.stop();
  }
  const middle = (list) => [...list].sort((a, b) => a.rps - b.rps)[1];
  const bare = middle(rounds.bare);
  const gateway = middle(rounds.gateway);
  results.push({
    bench: 'gateway-proxy',
    case: `GET /bench/item, ${total} requests, ${concurrency} connections`,
    rps: Math.round(gateway.rps),
    baseline_rps: Math.round(bare.rps),
    ratio: gateway.rps / bare.rps,
    p99_ms: gateway.p99,
    baseline_p99_ms: bare.p99,
  });
}

for (const result of results) {
  const figures = Object.entries(result)
    .filter(([key]) => key !== 'bench' && key !== 'case')
    .map(([key, value]) => `${key}=${typeof value === 'number' ? Number(value.toFixed(value < 10 ? 3 : 0)) : value}`)
    .join(' ');
  process.stdout.write(`${result.bench.padEnd(13)} ${result.case.padEnd(48)} ${figures}\n`);
}
