import { Counter, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  requests: Counter<'api' | 'status'>;
  duration: Histogram<'api'>;
  limiter: Counter<'decision'>;
  limiterSeconds: Histogram<never>;
  upstreamErrors: Counter<'api' | 'code'>;
}

/** A metric registered once per registry (the API and the gateway may share one in one process). */
function once<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * The gateway's Prometheus series: calls by API and status, their latency, the limiter's decisions
 * and round-trip time (Redis, or in process), and upstream failures. Labels stay bounded: API
 * slugs, status codes, decision and error codes; never keys, teams or paths.
 */
export function gatewayMetrics(registry: Registry): GatewayMetrics {
  const registers = [registry];
  return {
    requests: once(
      registry,
      'tollgate_gateway_requests_total',
      () =>
        new Counter({
          name: 'tollgate_gateway_requests_total',
          help: 'Calls answered by the gateway, by API slug (unrouted: no API matched) and status code',
          labelNames: ['api', 'status'],
          registers,
        }),
    ),
    duration: once(
      registry,
      'tollgate_gateway_request_duration_seconds',
      () =>
        new Histogram({
          name: 'tollgate_gateway_request_duration_seconds',
          help: 'Time from receiving a call to the end of its answer, by API slug',
          labelNames: ['api'],
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers,
        }),
    ),
    limiter: once(
      registry,
      'tollgate_gateway_limiter_decisions_total',
      () =>
        new Counter({
          name: 'tollgate_gateway_limiter_decisions_total',
          help: 'Limiter decisions: allowed, overage, rate_limited, quota_exhausted, unavailable, fallback (fail-open)',
          labelNames: ['decision'],
          registers,
        }),
    ),
    limiterSeconds: once(
      registry,
      'tollgate_gateway_limiter_seconds',
      () =>
        new Histogram({
          name: 'tollgate_gateway_limiter_seconds',
          help: "Round trip of one call's limit check (one Redis script, or the in-process limiter)",
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5],
          registers,
        }),
    ),
    upstreamErrors: once(
      registry,
      'tollgate_gateway_upstream_errors_total',
      () =>
        new Counter({
          name: 'tollgate_gateway_upstream_errors_total',
          help: 'Calls the upstream failed: upstream_unavailable (502) or upstream_timeout (504), by API slug',
          labelNames: ['api', 'code'],
          registers,
        }),
    ),
  };
}
