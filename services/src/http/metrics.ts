import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from './route.js';

/** A registry per process part (not prom-client's global), so several apps can live in one process. */
export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'tollgate_' });
  return registry;
}

/**
 * Request count and latency by method, matched route (the pattern, not the raw path, so the number
 * of series stays bounded) and status.
 */
export function httpMetrics(options: { registry: Registry; component: string }): Middleware {
  const labelNames = ['component', 'method', 'route', 'status'] as const;
  // The API and the gateway share one registry when they run in one process; the `component`
  // label tells their series apart, so the second caller reuses the metrics the first registered.
  const requests =
    (options.registry.getSingleMetric('tollgate_http_requests_total') as
      | Counter<(typeof labelNames)[number]>
      | undefined) ??
    new Counter({
      name: 'tollgate_http_requests_total',
      help: 'HTTP requests answered',
      labelNames,
      registers: [options.registry],
    });
  const duration =
    (options.registry.getSingleMetric('tollgate_http_request_duration_seconds') as
      | Histogram<(typeof labelNames)[number]>
      | undefined) ??
    new Histogram({
      name: 'tollgate_http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its response handler',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [options.registry],
    });
  return async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const labels = {
        component: options.component,
        method: ctx.method,
        route: (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched',
        status: String(ctx.status),
      };
      requests.inc(labels);
      duration.observe(labels, (performance.now() - started) / 1000);
    }
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Compares in constant time, so the token cannot be guessed byte by byte from response times. */
function bearerMatches(header: string, token: string): boolean {
  return timingSafeEqual(digest(header), digest(`Bearer ${token}`));
}

/** GET /metrics in the Prometheus text format; behind a bearer token when one is configured. */
export function metricsRoute(options: { registry: Registry; token: string | undefined }) {
  return defineRoute({
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics',
    description: 'Requires `Authorization: Bearer <TOLLGATE_METRICS_TOKEN>` when that variable is set.',
    tags: ['operations'],
    responses: { 200: { description: 'Metrics in the Prometheus text exposition format', contentType: 'text/plain' } },
    handler: async (ctx) => {
      if (options.token !== undefined && !bearerMatches(ctx.get('authorization'), options.token)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new TollgateError('unauthorized', 'metrics require the bearer token set in TOLLGATE_METRICS_TOKEN');
      }
      ctx.type = options.registry.contentType;
      ctx.body = await options.registry.metrics();
    },
  });
}
