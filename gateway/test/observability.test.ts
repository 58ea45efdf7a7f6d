import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import {
  type ApiDefinition,
  createLogger,
  createMetricsRegistry,
  listen,
  type RunningServer,
} from '@tollgate/services';
import { afterEach, describe, expect, it } from 'vitest';
import { createGatewayApp, type GatewayApp } from '../src/create-gateway-app.js';
import { staticRouting } from '../src/routing/routing-snapshot.js';

function api(slug: string, upstream: string): ApiDefinition {
  return {
    id: `id-${slug}`,
    slug,
    name: slug,
    hosts: [],
    pathPrefix: null,
    upstreams: [upstream],
    timeoutMs: 2_000,
    failurePolicy: 'fail-closed',
    meteredMetrics: ['calls'],
    plugins: [],
    updatedAt: new Date(),
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(sample: number) {
  const upstream: Server = createServer((req, res) => {
    req.resume();
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  const registry = createMetricsRegistry();
  const gateway: GatewayApp = createGatewayApp({
    logger: createLogger({ level: 'info', destination }),
    trustProxy: false,
    registry,
    accessLogSample: sample,
    routing: staticRouting([api('echo', upstreamUrl), api('gone', 'http://127.0.0.1:9')]),
  });
  const server: RunningServer = await listen(gateway.app.callback(), { host: '127.0.0.1', port: 0 });
  cleanups.push(
    () => {
      upstream.closeAllConnections();
      upstream.close();
    },
    () => gateway.close(),
    () => server.close(1_000),
  );
  return { server, registry, lines };
}

async function settle() {
  await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('gateway observability', () => {
  it('counts calls by API and status, times them, and counts upstream failures', async () => {
    const { server, registry } = await setUp(1);
    await (await fetch(`${server.url}/echo/a`)).text();
    await (await fetch(`${server.url}/echo/b`)).text();
    await (await fetch(`${server.url}/nowhere`)).text();
    await (await fetch(`${server.url}/gone/x`)).text();
    await settle();
    const text = await registry.metrics();
    expect(text).toContain('tollgate_gateway_requests_total{api="echo",status="200"} 2');
    expect(text).toContain('tollgate_gateway_requests_total{api="unrouted",status="404"} 1');
    expect(text).toContain('tollgate_gateway_requests_total{api="gone",status="502"} 1');
    expect(text).toContain('tollgate_gateway_upstream_errors_total{api="gone",code="upstream_unavailable"} 1');
    expect(text).toMatch(/tollgate_gateway_request_duration_seconds_count\{api="echo"\} 2/);
  });

  it('writes one access-log line per call, sampled, always for server errors', async () => {
    const all = await setUp(1);
    await (await fetch(`${all.server.url}/echo/a?token=secret`)).text();
    await settle();
    const call = all.lines.find((line) => line.msg === 'call');
    expect(call).toMatchObject({ api: 'echo', method: 'GET', status: 200, requestBytes: 0, responseBytes: 11 });
    expect(String(call?.url)).not.toContain('secret');
    expect(call?.requestId).toEqual(expect.stringMatching(/^req_/));

    const none = await setUp(0);
    for (let i = 0; i < 5; i++) await (await fetch(`${none.server.url}/echo/a`)).text();
    await (await fetch(`${none.server.url}/gone/x`)).text();
    await settle();
    const calls = none.lines.filter((line) => line.msg === 'call');
    expect(calls.map((line) => line.status)).toEqual([502]);
  });
});
