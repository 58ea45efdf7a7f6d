import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ApiDefinition, createLogger, listen, type RunningServer } from '@tollgate/services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Upstream {
  url: string;
  seen: Seen[];
  server: Server;
  /** Requests whose client went away before the answer. */
  aborted: number;
}

/** An upstream that answers what it received, and a few special paths. */
async function startUpstream(name: string): Promise<Upstream> {
  const upstream: Upstream = { url: '', seen: [], server: createServer(), aborted: 0 };
  upstream.server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // The sink counts what it gets and keeps nothing.
      if (!req.url?.startsWith('/sink')) chunks.push(chunk);
    });
    req.on('end', () => {
      if (req.url?.startsWith('/sink')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received }));
        return;
      }
      const seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      upstream.seen.push(seen);
      if (req.url?.startsWith('/slow')) {
        const timer = setTimeout(() => res.end('late'), 2_000);
        res.on('close', () => {
          clearTimeout(timer);
          if (!res.writableFinished) upstream.aborted++;
        });
        return;
      }
      if (req.url?.startsWith('/huge')) {
        // 50 MB made on the fly, never held whole.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const block = Buffer.alloc(1024 * 1024, 'h');
        let sent = 0;
        const pump = () => {
          while (sent < 50) {
            sent++;
            if (!res.write(block)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const block = Buffer.alloc(64 * 1024, 'x');
        for (let i = 0; i < 80; i++) res.write(block);
        res.end();
        return;
      }
      res.writeHead(201, {
        'content-type': 'application/json',
        'x-upstream': name,
        connection: 'keep-alive, x-hop',
        'x-hop': 'must not pass',
        'keep-alive': 'timeout=77',
      });
      res.end(JSON.stringify({ upstream: name, method: seen.method, url: seen.url, body: seen.body }));
    });
  });
  await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', resolve));
  upstream.url = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`;
  return upstream;
}

async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

function api(overrides: Partial<ApiDefinition> & { slug: string; upstreams: string[] }): ApiDefinition {
  return {
    id: `id-${overrides.slug}`,
    name: overrides.slug,
    hosts: [],
    pathPrefix: null,
    timeoutMs: 5_000,
    failurePolicy: 'fail-closed',
    meteredMetrics: ['calls', 'bandwidth'],
    plugins: [],
    updatedAt: new Date(),
    ...overrides,
  };
}

let one: Upstream;
let two: Upstream;
let gateway: GatewayApp;
let server: RunningServer;

beforeAll(async () => {
  one = await startUpstream('one');
  two = await startUpstream('two');
  const down = await closedPort();
  gateway = createGatewayApp({
    logger: createLogger({ level: 'silent' }),
    trustProxy: false,
    routing: staticRouting([
      api({ slug: 'weather', upstreams: [one.url], hosts: ['weather.example.test'] }),
      api({ slug: 'based', upstreams: [`${one.url}/base/v2`], pathPrefix: '/partners/based' }),
      api({ slug: 'pair', upstreams: [one.url, two.url] }),
      api({ slug: 'flaky', upstreams: [down, two.url] }),
      api({ slug: 'down', upstreams: [down] }),
      api({ slug: 'slow', upstreams: [one.url], timeoutMs: 300 }),
    ]),
  });
  server = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await server?.close(1_000);
  await gateway?.close();
  one?.server.closeAllConnections();
  two?.server.closeAllConnections();
  one?.server.close();
  two?.server.close();
});

/** A raw request, so Host and hop-by-hop headers can be set as a client would. */
function send(
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const target = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('gateway routing and proxying', () => {
  it('routes /<slug>/..., strips the prefix and forwards method, query, body and headers', async () => {
    const answer = await send('/weather/v1/today?city=Oslo&unit=c', {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        'x-api-key': 'tg_live_secret',
        'x-custom': 'kept',
        connection: 'keep-alive, x-drop',
        'x-drop': 'hop by hop',
        'x-forwarded-for': '6.6.6.6',
      },
      body: 'hello upstream',
    });
    expect(answer.status).toBe(201);
    expect(JSON.parse(answer.body)).toEqual({
      upstream: 'one',
      method: 'POST',
      url: '/v1/today?city=Oslo&unit=c',
      body: 'hello upstream',
    });
    const seen = one.seen.at(-1) as Seen;
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers['x-drop']).toBeUndefined();
    // Not behind a trusted proxy: the client's own X-Forwarded-For is replaced, not extended.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(server.url).host);
    expect(seen.headers['x-request-id']).toBe(answer.headers['x-request-id']);
    expect(seen.headers.host).toBe(new URL(one.url).host);
    // The upstream's hop-by-hop headers stay on its side.
    expect(answer.headers['x-upstream']).toBe('one');
    expect(answer.headers['x-hop']).toBeUndefined();
    expect(answer.headers['keep-alive']).not.toBe('timeout=77');
  });

  it('routes by host first, by the longest path prefix next, and joins an upstream base path', async () => {
    const byHost = await send('/anything/here', { headers: { host: 'Weather.Example.Test:8080' } });
    expect(JSON.parse(byHost.body).url).toBe('/anything/here');
    const byPrefix = await send('/partners/based/items/7');
    expect(JSON.parse(byPrefix.body).url).toBe('/base/v2/items/7');
    const bySlug = await send('/based');
    expect(JSON.parse(bySlug.body).url).toBe('/base/v2/');
    const notAPrefix = await send('/weatherman/x');
    expect(notAPrefix.status).toBe(404);
    expect(JSON.parse(notAPrefix.body).error.code).toBe('route_not_found');
  });

  it('resolves dot segments before routing, so a path cannot climb out of its API or base path', async () => {
    const climbed = await send('/based/../weather/x');
    expect(JSON.parse(climbed.body).url).toBe('/x');
    const encoded = await send('/based/%2e%2e/%2e%2e/admin');
    expect(encoded.status).toBe(404);
  });

  it('balances round-robin between upstreams', async () => {
    const names = [];
    for (let i = 0; i < 4; i++) names.push(JSON.parse((await send('/pair/n')).body).upstream);
    expect(new Set(names)).toEqual(new Set(['one', 'two']));
    expect(names[0]).not.toBe(names[1]);
  });

  it('answers 502 when the upstream is down, and skips a failing target while others work', async () => {
    const down = await send('/down/x');
    expect(down.status).toBe(502);
    expect(JSON.parse(down.body).error).toMatchObject({
      code: 'upstream_unavailable',
      request_id: down.headers['x-request-id'],
    });
    // GETs that hit the dead target are retried on the live one; every call is served.
    const before = two.seen.length;
    for (let i = 0; i < 6; i++) expect((await send('/flaky/x')).status).toBe(201);
    expect(two.seen.length - before).toBe(6);
    // A POST with a body is not retried elsewhere: the dead target answers 502 until it cools down.
  });

  it('answers 504 after the timeout and aborts the upstream request', async () => {
    const abortedBefore = one.aborted;
    const started = Date.now();
    const slow = await send('/slow/slow');
    expect(slow.status).toBe(504);
    expect(JSON.parse(slow.body).error.code).toBe('upstream_timeout');
    expect(Date.now() - started).toBeLessThan(1_500);
    const deadline = Date.now() + 2_000;
    while (one.aborted === abortedBefore && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(one.aborted).toBe(abortedBefore + 1);
  });

  it('aborts the upstream request when the client goes away', async () => {
    const before = one.aborted;
    const target = new URL(server.url);
    const req = httpRequest({ host: target.hostname, port: target.port, path: '/weather/slow', method: 'GET' });
    req.on('error', () => {});
    req.end();
    await new Promise((resolve) => setTimeout(resolve, 150));
    req.destroy();
    const deadline = Date.now() + 2_000;
    while (one.aborted === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(one.aborted).toBe(before + 1);
  });

  it('streams a large answer through intact', async () => {
    const big = await send('/weather/big');
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(80 * 64 * 1024);
  });

  it('streams 50 MB each way without holding the body in memory', async () => {
    const target = new URL(server.url);
    let peak = 0;
    const base = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss - base);
    }, 5);
    try {
      const uploaded = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            path: '/weather/sink',
            method: 'PUT',
            headers: { 'transfer-encoding': 'chunked' },
          },
          (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => {
              text += chunk;
            });
            res.on('end', () => resolve(text));
          },
        );
        req.on('error', reject);
        const block = Buffer.alloc(1024 * 1024, 'u');
        let sent = 0;
        const pump = () => {
          while (sent < 50) {
            sent++;
            if (!req.write(block)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      expect(JSON.parse(uploaded).received).toBe(50 * 1024 * 1024);
      const downloaded = await new Promise<number>((resolve, reject) => {
        httpRequest({ host: target.hostname, port: target.port, path: '/weather/huge' }, (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
          });
          res.on('end', () => resolve(bytes));
        })
          .on('error', reject)
          .end();
      });
      expect(downloaded).toBe(50 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    // Holding either body would take 50 MB; streaming keeps a few buffers in flight.
    expect(peak).toBeLessThan(40 * 1024 * 1024);
  });

  it('answers headers over 16 KiB with 431 headers_too_large in the JSON error shape', async () => {
    const answer = await send('/weather/x', { headers: { 'x-padding': 'p'.repeat(20_000) } });
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.body).error).toMatchObject({
      code: 'headers_too_large',
      request_id: answer.headers['x-request-id'],
    });
  });
});
