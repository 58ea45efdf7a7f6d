import type { Registry } from 'prom-client';
import { HotCounter, HotHistogram, registerOnce } from './hot-metrics.js';

export interface GatewayMetrics {
  /** Labels: api, status. */
  requests: HotCounter;
  /** Labels: api. */
  duration: HotHistogram;
  /** Labels: decision. */
  limiter: HotCounter;
  /** No labels. */
  limiterSeconds: HotHistogram;
  /** Labels: api, code. */
  upstreamErrors: HotCounter;
}

/**
 * The gateway's Prometheus series: calls by API and status, their latency, the limiter's decisions
 * and round-trip time (Redis, or in process), and upstream failures. Labels stay bounded: API
 * slugs, status codes, decision and error codes; never keys, teams or paths. They are hot-path
 * metrics (hot-metrics.ts): a series is looked up once and counted with plain additions.
 */
export function gatewayMetrics(registry: Registry): GatewayMetrics {
  return {
    requests: registerOnce(
      registry,
      'tollgate_gateway_requests_total',
      () =>
        new HotCounter({
          name: 'tollgate_gateway_requests_total',
          help: 'Calls answered by the gateway, by API slug (unrouted: no API matched) and status code',
          labelNames: ['api', 'status'],
        }),
    ),
    duration: registerOnce(
      registry,
      'tollgate_gateway_request_duration_seconds',
      () =>
        new HotHistogram({
          name: 'tollgate_gateway_request_duration_seconds',
          help: 'Time from receiving a call to the end of its answer, by API slug',
          labelNames: ['api'],
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        }),
    ),
    limiter: registerOnce(
      registry,
      'tollgate_gateway_limiter_decisions_total',
      () =>
        new HotCounter({
          name: 'tollgate_gateway_limiter_decisions_total',
          help: 'Limiter decisions: allowed, overage, rate_limited, quota_exhausted, unavailable, fallback (fail-open)',
          labelNames: ['decision'],
        }),
    ),
    limiterSeconds: registerOnce(
      registry,
      'tollgate_gateway_limiter_seconds',
      () =>
        new HotHistogram({
          name: 'tollgate_gateway_limiter_seconds',
          help: "One call's limit check: from a lease (no I/O), a reserve round trip to Redis, or the in-process limiter",
          labelNames: [],
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5],
        }),
    ),
    upstreamErrors: registerOnce(
      registry,
      'tollgate_gateway_upstream_errors_total',
      () =>
        new HotCounter({
          name: 'tollgate_gateway_upstream_errors_total',
          help: 'Calls the upstream failed: upstream_unavailable (502) or upstream_timeout (504), by API slug',
          labelNames: ['api', 'code'],
        }),
    ),
  };
}
