// Benchmarks, each reported as a ratio against a baseline measured in the same run (machines here are
// shared and noisy, so absolute numbers mean little). Bounded in count and time; loopback only.
//
//   cli-startup   `tollgate --version` and `tollgate --help` against `node -e 0`
//   api-healthz   GET /healthz through the API's full middleware stack against a bare node:http server
//   gateway-proxy GET through the gateway (routing + proxy, no keys or limits) against a bare
//                 node:http + undici reverse proxy to the same upstream
//   gateway-full  the same through the whole request path: API key, plan limits and quota (in
//                 process, or Redis with BENCH_REDIS_URL), metering
//   gateway-p99   p50/p99 of the full path and of the bare proxy at half the full path's
//                 saturation rate, open loop: the latency the gateway adds under moderate load
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

async function startServer(kind, script = serverScript, extra = [], execArgv = []) {
  const child = fork(script, [kind, ...extra], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv });
  const message = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  const { url, headers } = typeof message === 'string' ? { url: message, headers: {} } : message;
  return {
    url,
    headers,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** Sends `total` GETs over `concurrency` keep-alive connections; returns requests/s and p99 (ms). */
async function load(url, total, concurrency, headers = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let sent = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      request(url, { agent, headers }, (response) => {
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

/**
 * Open-loop load: `total` GETs sent at `rate` per second whatever the answers do (as real clients
 * arrive), over up to 64 keep-alive connections; returns the p50 and p99 latency (ms) of the answers.
 */
async function paced(url, rate, total, headers = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  // One second at the same rate on the same agent first, unmeasured: the connections are open and
  // the code paths warm when measuring starts, as in a server that has been serving for a while.
  await pacedRun(agent, url, rate, rate, headers);
  const latencies = await pacedRun(agent, url, rate, total, headers);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { p50: latencies[Math.floor(latencies.length * 0.5)], p99: latencies[Math.floor(latencies.length * 0.99)] };
}

async function pacedRun(agent, url, rate, total, headers) {
  const latencies = [];
  let sent = 0;
  const started = performance.now();
  await new Promise((resolve, reject) => {
    let done = 0;
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
      while (sent < due) {
        sent++;
        const at = performance.now();
        request(url, { agent, headers }, (response) => {
          response.resume();
          response.on('end', () => {
            latencies.push(performance.now() - at);
            if (++done === total) resolve();
          });
        })
          .on('error', reject)
          .end();
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  return latencies;
}

const results = [];
// `npm run bench -- gateway` (or any names) runs only the benches whose names start with one of them.
const only = process.argv.slice(2);
const wanted = (...names) => only.length === 0 || names.some((name) => only.some((prefix) => name.startsWith(prefix)));

// cli-startup
if (wanted('cli-startup')) {
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
if (wanted('api-healthz')) {
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

// gateway-proxy and gateway-full
if (wanted('gateway-proxy', 'gateway-full', 'gateway-p99')) {
  const total = 15_000;
  const concurrency = 32;
  const upstream = await startServer('upstream', proxyScript);
  // The proxies under test (baseline and gateway alike) run with V8's garbage collector on their
  // main thread (BENCH_GC=parallel for V8's default helper threads): on two cores shared with the
  // load generator, the upstream, Redis and PostgreSQL, GC helper threads compete with the main
  // thread and show as multi-millisecond stalls at p99 (docs/benchmarks.md).
  const gcFlags = process.env.BENCH_GC === 'parallel' ? [] : ['--single-threaded-gc'];
  const measure = async (kind) => {
    const server = await startServer(kind, proxyScript, [upstream.url], gcFlags);
    try {
      await load(server.url, 2_000, concurrency, server.headers); // warm-up
      return await load(server.url, total, concurrency, server.headers);
    } finally {
      await server.stop();
    }
  };
  const kinds = ['bare', 'gateway', 'full'];
  const rounds = Object.fromEntries(kinds.map((kind) => [kind, []]));
  const middle = (list) => [...list].sort((a, b) => a.rps - b.rps)[1];
  // Latency at half of the full gateway's saturation rate, for the bare proxy and the gateway alike.
  const latency = {};
  try {
    for (let round = 0; round < 3; round++) {
      for (const kind of kinds) rounds[kind].push(await measure(kind));
    }
    const rate = Math.round(middle(rounds.full).rps / 2);
    // Three alternated rounds each; the median round's p50 and p99 are reported.
    const latencyRounds = { bare: [], full: [] };
    for (let round = 0; round < 3; round++) {
      for (const kind of ['bare', 'full']) {
        const server = await startServer(kind, proxyScript, [upstream.url], gcFlags);
        try {
          await load(server.url, 2_000, concurrency, server.headers); // warm-up
          latencyRounds[kind].push(await paced(server.url, rate, Math.min(20_000, rate * 3), server.headers));
        } finally {
          await server.stop();
        }
      }
    }
    for (const kind of ['bare', 'full']) {
      const byP99 = [...latencyRounds[kind]].sort((a, b) => a.p99 - b.p99);
      latency[kind] = { ...byP99[1], rate, rounds: latencyRounds[kind].map((r) => r.p99) };
    }
  } finally {
    await upstream.stop();
  }
  const bare = middle(rounds.bare);
  for (const [kind, bench, what] of [
    ['gateway', 'gateway-proxy', 'routing + proxy'],
    ['full', 'gateway-full', `key + limits${process.env.BENCH_REDIS_URL ? ' (Redis)' : ' (in process)'} + metering`],
  ]) {
    const measured = middle(rounds[kind]);
    results.push({
      bench,
      case: `${what}, ${total} requests, ${concurrency} connections`,
      rps: Math.round(measured.rps),
      baseline_rps: Math.round(bare.rps),
      ratio: measured.rps / bare.rps,
      p99_ms: measured.p99,
      baseline_p99_ms: bare.p99,
    });
  }
  results.push({
    bench: 'gateway-p99',
    case: `full path at half its saturation (${latency.full.rate}/s, open loop)`,
    p50_ms: latency.full.p50,
    p99_ms: latency.full.p99,
    baseline_p50_ms: latency.bare.p50,
    baseline_p99_ms: latency.bare.p99,
    added_p99_ms: latency.full.p99 - latency.bare.p99,
    p99_rounds_ms: latency.full.rounds.map((v) => v.toFixed(2)).join('/'),
    baseline_p99_rounds_ms: latency.bare.rounds.map((v) => v.toFixed(2)).join('/'),
  });
}

for (const result of results) {
  const figures = Object.entries(result)
    .filter(([key]) => key !== 'bench' && key !== 'case')
    .map(([key, value]) => `${key}=${typeof value === 'number' ? Number(value.toFixed(value < 10 ? 3 : 0)) : value}`)
    .join(' ');
  process.stdout.write(`${result.bench.padEnd(13)} ${result.case.padEnd(48)} ${figures}\n`);
}
