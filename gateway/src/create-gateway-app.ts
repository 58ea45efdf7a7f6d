import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { PluginDefinition, PluginRequest } from '@tollgate/plugins';
import {
  createMetricsRegistry,
  errorBody,
  isTollgateError,
  type Logger,
  newRequestId,
  redactUrl,
  type TeamPolicy,
  TollgateError,
} from '@tollgate/services';
import type { Registry } from 'prom-client';
import { type KeyVerifier, presentedKey, type VerifiedKey } from './keys/key-verifier.js';
import { limitRequestFor, rateLimitHeaders } from './limits/enforce.js';
import type { LimitDecision, Limiter, LimitRequest } from './limits/limiter.js';
import type { TeamPolicyCache } from './limits/team-policies.js';
import type { UsageRecorder } from './metering/usage-recorder.js';
import { gatewayMetrics } from './observability/gateway-metrics.js';
import type { CounterSeries, HistogramSeries } from './observability/hot-metrics.js';
import { type HookAnswer, type PluginChain, pluginChains } from './plugins/plugin-stage.js';
import { AbortHook, proxyRequest } from './proxy/proxy.js';
import { UpstreamRegistry } from './proxy/upstreams.js';
import { type RoutingSource, staticRouting } from './routing/routing-snapshot.js';

export interface GatewayAppOptions {
  logger: Logger;
  trustProxy: boolean;
  registry?: Registry;
  /** The APIs to route; none when absent. */
  routing?: RoutingSource;
  /** When given, every routed request needs an API key it accepts (ctx.state.key); none asked otherwise. */
  keys?: KeyVerifier;
  /**
   * Rate limits and quotas of the key's team (they need `keys`). `fallback` is the in-process
   * limiter an API with the `fail-open` policy uses while `limiter` (Redis) cannot be reached.
   */
  limits?: { limiter: Limiter; policies: TeamPolicyCache; fallback?: Limiter };
  /** Counts every served call (metering). */
  usage?: UsageRecorder;
  /** Plugin definitions beyond the first-party ones, that an API's plugin list can name (embedders, tests). */
  plugins?: readonly PluginDefinition<never>[];
  /**
   * Share of calls written to the access log, from 0 to 1 (1 by default). Calls answered with a
   * 5xx are always written.
   */
  accessLogSample?: number;
}

export interface GatewayApp {
  /** `app.callback()` is the node:http request listener (the shape Koa apps have). */
  app: { callback(): RequestListener };
  registry: Registry;
  /** Closes the upstream connection pools (after the server stopped taking requests). */
  close(): Promise<void>;
}

/** Paths the gateway answers itself; an API can never be routed at them. */
export const reservedGatewayPaths = ['/healthz'] as const;

/**
 * The data plane: answers its own health check, finds the API a request is for in the routing
 * snapshot (404 `route_not_found` otherwise), and proxies it to one of the API's upstreams. Keys,
 * limits, metering and plugins plug in between routing and proxying.
 */
export function createGatewayApp(options: GatewayAppOptions): GatewayApp {
  const registry = options.registry ?? createMetricsRegistry();
  const logger = options.logger.child({ component: 'gateway' });
  const routing = options.routing ?? staticRouting([]);
  const upstreams = new UpstreamRegistry();
  routing.onChange((table) => upstreams.retain(table.apis));
  const metrics = gatewayMetrics(registry);
  const sample = options.accessLogSample ?? 1;
  const pluginChainFor = pluginChains(options.plugins);

  // No web framework on the hot path: a plain node:http listener. Koa's context, middleware chain
  // and response handling cost about a sixth of a bare proxy's throughput (ARCHITECTURE.md), and
  // the gateway needs little of them: one request id, one error shape, one access-log line.
  const listener: RequestListener = (req, res) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && acceptableRequestId.test(incoming) ? incoming : newRequestId();
    // X-Request-Id goes into each answer's writeHead (proxy.ts, writeAnswer) rather than through
    // res.setHeader here: headers set ahead make Node merge them one by one on every writeHead.
    const ctx: GatewayContext = { req, res, requestId, ip: clientIp(req, options.trustProxy) };
    if (
      (req.url === '/healthz' || req.url?.startsWith('/healthz?')) &&
      (req.method === 'GET' || req.method === 'HEAD')
    ) {
      writeAnswer(ctx, 200, { 'content-type': 'application/json; charset=utf-8' }, '{"status":"ok"}');
      return;
    }
    serve(ctx).catch((error: unknown) => {
      logger.error({ err: error, requestId }, 'unhandled error');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      writeAnswer(
        ctx,
        500,
        jsonType,
        JSON.stringify(errorBody('internal_error', 'something went wrong on our side', requestId)),
      );
    });
  };

  /** Headers every later answer carries (RateLimit), and the plugins' last word on them. */
  interface CallState {
    pluginRequest?: PluginRequest;
    chain?: PluginChain;
    headers: Record<string, string>;
    api: string;
    key?: VerifiedKey;
    requestBytes?: number;
    responseBytes?: number;
    upstream?: string;
    errorCode?: string;
    abort: AbortHook;
  }

  /** Writes an answer the gateway makes itself (a hook's or an error), through the response hooks. */
  function answer(
    ctx: GatewayContext,
    call: CallState,
    status: number,
    headers: Record<string, string>,
    body: string,
  ): void {
    const all: Record<string, string | string[]> = { ...call.headers, ...headers };
    if (call.chain && call.pluginRequest) call.chain.response(call.pluginRequest, { status, headers: all });
    writeAnswer(ctx, status, all, body);
  }

  function answerHook(ctx: GatewayContext, call: CallState, hook: HookAnswer): void {
    answer(ctx, call, hook.status, hook.headers, hook.body ?? '');
  }

  // Series looked up once per API and status, then counted with plain additions (hot-metrics.ts).
  const requestSeries = new Map<string, Map<number, CounterSeries>>();
  const durationSeries = new Map<string, HistogramSeries>();
  function requestsFor(api: string, status: number): CounterSeries {
    let byStatus = requestSeries.get(api);
    if (!byStatus) {
      byStatus = new Map();
      requestSeries.set(api, byStatus);
    }
    let series = byStatus.get(status);
    if (!series) {
      series = metrics.requests.series(api, String(status));
      byStatus.set(status, series);
    }
    return series;
  }
  function durationFor(api: string): HistogramSeries {
    let series = durationSeries.get(api);
    if (!series) {
      series = metrics.duration.series(api);
      durationSeries.set(api, series);
    }
    return series;
  }
  const limiterSeconds = metrics.limiterSeconds.series();

  /** One access-log line and the gateway's series, when the call's answer is complete. */
  function observe(ctx: GatewayContext, call: CallState, startedAt: number): void {
    const status = ctx.res.statusCode;
    const seconds = (performance.now() - startedAt) / 1000;
    requestsFor(call.api, status).value += 1;
    durationFor(call.api).observe(seconds);
    if (call.errorCode === 'upstream_unavailable' || call.errorCode === 'upstream_timeout') {
      metrics.upstreamErrors.series(call.api, call.errorCode).value += 1;
    }
    if (status < 500 && (sample <= 0 || (sample < 1 && Math.random() >= sample))) return;
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    if (!logger.isLevelEnabled(level)) return;
    logger[level](
      {
        requestId: ctx.requestId,
        api: call.api,
        ...(call.key ? { team: call.key.teamId, key: call.key.keyId } : {}),
        method: ctx.req.method,
        url: redactUrl(ctx.req.url ?? '/'),
        ip: ctx.ip,
        status,
        ...(call.errorCode ? { error: call.errorCode } : {}),
        durationMs: Math.round(seconds * 1_000_000) / 1000,
        ...(call.requestBytes !== undefined
          ? { requestBytes: call.requestBytes, responseBytes: call.responseBytes }
          : {}),
        ...(call.upstream ? { upstream: call.upstream } : {}),
      },
      'call',
    );
  }

  async function serve(ctx: GatewayContext): Promise<void> {
    const started = Date.now();
    const startedAt = performance.now();
    const call: CallState = { headers: {}, api: 'unrouted', abort: new AbortHook() };
    // One listener for the answer's end: a client gone before it aborts the upstream request.
    ctx.res.on('close', () => {
      if (!ctx.res.writableFinished) call.abort.abort();
      observe(ctx, call, startedAt);
    });
    try {
      // Dot segments are resolved first, so `/a/../b` cannot climb out of an API's prefix or an
      // upstream's base path.
      // Appended to a fixed origin, so `//host/...` stays a path rather than naming an authority.
      const url = requestTarget(ctx.req.url ?? '/');
      const match = routing.current().match(ctx.req.headers.host, url.pathname);
      if (!match) throw new TollgateError('route_not_found', `no API is routed at ${url.pathname}`);
      const api = match.api;
      call.api = api.slug;
      const method = ctx.req.method ?? 'GET';
      const chain = pluginChainFor(api);
      if (!chain.empty) {
        call.chain = chain;
        call.pluginRequest = {
          method,
          path: `${match.upstreamPath}${url.search}`,
          headers: ctx.req.headers,
          requestId: ctx.requestId,
          // Set once the key's team policy is known; present from the start so every call's object has one shape.
          plan: undefined,
          entitlements: undefined,
        };
        const early = await chain.preAuth(call.pluginRequest);
        if (early) return answerHook(ctx, call, early);
      }

      // API key (gateway/src/keys): verified before anything else is spent on the request.
      let stripAuthorization = false;
      let key: VerifiedKey | undefined;
      if (options.keys) {
        const presented = presentedKey(ctx.req.headers);
        stripAuthorization = presented.inAuthorization;
        const check = { apiId: api.id, method, clientIp: ctx.ip };
        try {
          const verified = options.keys.verify(presented.key, check);
          key = verified instanceof Promise ? await verified : verified;
          call.key = key;
        } catch (error) {
          // RFC 6750 section 3: a 401 names the scheme, and says why when a key was sent.
          if (error instanceof TollgateError && error.status === 401) {
            const why = presented.key === undefined ? '' : ', error="invalid_token"';
            call.headers['WWW-Authenticate'] = `Bearer realm="tollgate"${why}`;
          }
          throw error;
        }
      }

      // Limits and quota of the key's team: one limiter round trip; a refused call counts nowhere.
      let decision: LimitDecision | undefined;
      let policy: TeamPolicy | undefined;
      if (options.limits && key) {
        const cached = options.limits.policies.get(key.teamId);
        policy = cached instanceof Promise ? await cached : cached;
        if (!policy) throw new TollgateError('unauthorized', 'this key belongs to no team');
        // The plan and its entitlements, shared by every call of the team (no copy): for the request hooks.
        if (call.pluginRequest) {
          call.pluginRequest.plan = policy.planSlug;
          call.pluginRequest.entitlements = policy.entitlements;
        }
        if (policy.paymentRequired) {
          throw new TollgateError('payment_required', "the team's subscription is unpaid", {
            hint: 'the team pays its open invoice, then calls work again',
          });
        }
        const request = limitRequestFor({ policy, keyId: key.keyId, keyLimits: key.limits }, started);
        const checked = checkLimits(options.limits, request, api.failurePolicy);
        decision = checked instanceof Promise ? await checked : checked;
        const quota = request.quota;
        const headers = rateLimitHeaders(
          decision,
          quota?.periodStart ? quota.periodEnd.getTime() - quota.periodStart.getTime() : undefined,
          request,
        );
        if (headers) {
          call.headers['RateLimit-Policy'] = headers['RateLimit-Policy'];
          call.headers.RateLimit = headers.RateLimit;
        }
        if (!decision.allowed) {
          const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
          call.headers['Retry-After'] = String(seconds);
          throw decision.refusedBy.kind === 'quota'
            ? new TollgateError('quota_exhausted', "the team's plan quota for this billing period is used up", {
                details: { quota: decision.quota?.limit, retry_after_seconds: seconds },
              })
            : new TollgateError('rate_limited', `too many calls: the ${decision.refusedBy.id} limit is reached`, {
                details: { limit: decision.refusedBy.id, retry_after_seconds: seconds },
              });
        }
      }

      let extraHeaders: Record<string, string> | undefined;
      let maxBodyBytes: number | undefined;
      if (call.chain && call.pluginRequest) {
        const decided = await call.chain.request(call.pluginRequest);
        if ('status' in decided) return answerHook(ctx, call, decided);
        extraHeaders = decided.headers;
        maxBodyBytes = decided.maxBodyBytes;
      }

      // A failure before anything was written is answered in the JSON error shape below.
      const outcome = await proxyRequest({
        req: ctx.req,
        res: ctx.res,
        upstreams: upstreams.setForApi(api),
        pathAndQuery: `${match.upstreamPath}${url.search}`,
        timeoutMs: api.timeoutMs,
        context: {
          requestId: ctx.requestId,
          clientIp: ctx.ip,
          protocol: protocolOf(ctx.req, options.trustProxy),
          trustProxy: options.trustProxy,
          stripAuthorization,
          policy,
        },
        extraHeaders,
        maxBodyBytes,
        meter: call,
        abort: call.abort,
        decorate: (status, headers) => {
          Object.assign(headers, call.headers);
          if (call.chain && call.pluginRequest) call.chain.response(call.pluginRequest, { status, headers });
        },
      });
      if (options.usage && key) {
        options.usage.record({
          teamId: key.teamId,
          keyId: key.keyId,
          apiId: api.id,
          at: started,
          status: outcome.status,
          requestBytes: outcome.requestBytes,
          responseBytes: outcome.responseBytes,
          latencyMs: Date.now() - started,
          overage: decision?.allowed === true && decision.quota?.overage === true,
        });
      }
    } catch (error) {
      if (!isTollgateError(error) || ctx.res.headersSent) throw error;
      call.errorCode = error.code;
      const retryAfter = error.details?.retry_after_seconds;
      if (typeof retryAfter === 'number') call.headers['Retry-After'] = String(retryAfter);
      if (error.status >= 500) logger.error({ err: error, requestId: ctx.requestId }, error.message);
      const body = JSON.stringify(errorBody(error.code, error.message, ctx.requestId, error.details));
      answer(ctx, call, error.status, jsonType, body);
    }
  }

  const decisionSeries = new Map<string, CounterSeries>();
  function decisionCounter(decision: string): CounterSeries {
    let series = decisionSeries.get(decision);
    if (!series) {
      series = metrics.limiter.series(decision);
      decisionSeries.set(decision, series);
    }
    return series;
  }

  function decisionLabel(decision: LimitDecision): string {
    if (!decision.allowed) return decision.refusedBy.kind === 'quota' ? 'quota_exhausted' : 'rate_limited';
    return decision.quota?.overage ? 'overage' : 'allowed';
  }

  /**
   * Calls the in-process fallback admitted while the limiter could not be reached, by limit request
   * (one object per key and billing period): added back to the limiter once it answers again, so
   * the quota and the long windows count them (reconcile.ts). Metering counts them regardless.
   */
  const owedCalls = new Map<LimitRequest, { calls: number; overage: number }>();
  let reconcileTimer: NodeJS.Timeout | undefined;
  function owe(request: LimitRequest, decision: LimitDecision): LimitDecision {
    if (!decision.allowed || !options.limits?.limiter.reconcile) return decision;
    let entry = owedCalls.get(request);
    if (!entry) {
      entry = { calls: 0, overage: 0 };
      owedCalls.set(request, entry);
    }
    entry.calls += 1;
    if (decision.quota?.overage) entry.overage += 1;
    reconcileTimer ??= setInterval(() => void reconcile(), 1_000).unref();
    return decision;
  }
  let reconciling = false;
  async function reconcile(): Promise<void> {
    const reconcileInto = options.limits?.limiter.reconcile;
    if (reconciling || !reconcileInto) return;
    reconciling = true;
    try {
      for (const [request, entry] of owedCalls) {
        const { calls, overage } = entry;
        await reconcileInto(request, calls, overage);
        // Calls owed while the script ran stay for the next round.
        entry.calls -= calls;
        entry.overage -= overage;
        if (entry.calls === 0) owedCalls.delete(request);
        logger.info({ calls, overage }, 'limiter reachable again: calls served in process added to its counters');
      }
      if (owedCalls.size === 0 && reconcileTimer) {
        clearInterval(reconcileTimer);
        reconcileTimer = undefined;
      }
    } catch {
      // Still unreachable: try again next round.
    } finally {
      reconciling = false;
    }
  }

  /** While the limiter is down, fail-open calls would log on every call: once a minute is enough. */
  let lastFallbackWarning = 0;
  function warnFallback(error: unknown): void {
    if (Date.now() - lastFallbackWarning < 60_000) return;
    lastFallbackWarning = Date.now();
    logger.warn({ err: error }, 'limiter unreachable: serving fail-open APIs with in-process limits');
  }

  /**
   * The limiter's answer, or the API's failure policy when the limiter cannot be reached:
   * `fail-closed` answers 503 `limiter_unavailable`, `fail-open` serves and counts in process.
   */
  function checkLimits(
    limits: NonNullable<GatewayAppOptions['limits']>,
    request: LimitRequest,
    policy: 'fail-open' | 'fail-closed',
  ): LimitDecision | Promise<LimitDecision> {
    const started = performance.now();
    const decided = (decision: LimitDecision) => {
      limiterSeconds.observe((performance.now() - started) / 1000);
      decisionCounter(decisionLabel(decision)).value += 1;
      return decision;
    };
    const failed = (error: unknown) => {
      if (policy === 'fail-open' && limits.fallback) {
        warnFallback(error);
        decisionCounter('fallback').value += 1;
        const fallback = limits.fallback.check(request);
        return fallback instanceof Promise
          ? fallback.then((decision) => owe(request, decision))
          : owe(request, fallback);
      }
      decisionCounter('unavailable').value += 1;
      throw new TollgateError('limiter_unavailable', 'the rate limiter cannot be reached; try again shortly', {
        cause: error,
      });
    };
    // A decision from a leased unit comes back without a promise: no microtask on the common path.
    let checked: LimitDecision | Promise<LimitDecision>;
    try {
      checked = limits.limiter.check(request);
    } catch (error) {
      return failed(error);
    }
    return checked instanceof Promise ? checked.then(decided, failed) : decided(checked);
  }

  return {
    app: { callback: () => listener },
    registry,
    async close() {
      // One last try to hand over what was served in process.
      await reconcile();
      if (reconcileTimer) clearInterval(reconcileTimer);
      if (owedCalls.size > 0) {
        const calls = [...owedCalls.values()].reduce((sum, entry) => sum + entry.calls, 0);
        logger.warn({ calls }, 'calls served in process could not be added to the limiter before shutdown');
      }
      await upstreams.close();
    },
  };
}

/** What one call carries through the gateway. */
interface GatewayContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** The client's address: the first X-Forwarded-For entry behind a trusted proxy, else the socket's. */
  ip: string;
}

const jsonType = { 'content-type': 'application/json; charset=utf-8' };

/** An incoming X-Request-Id is kept only when it is short and plain (safe in logs and headers). */
const acceptableRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? '';
}

function protocolOf(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-proto'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
}

/** A path made only of these, with no dot segment, is what URL parsing would give back unchanged. */
const plainPath = /^\/[A-Za-z0-9\-_~!$&'()*+,;=:@/.]*$/;
const plainQuery = /^\?[A-Za-z0-9\-_~!$&()*+,;=:@/.?%]*$/;

/**
 * The request target's path and query. Dot segments are resolved (so `/a/../b` cannot climb out
 * of an API's prefix or an upstream's base path) and the target is read against a fixed origin (so
 * `//host/...` stays a path rather than naming an authority). The common plain target skips the URL
 * parser, which is among the costliest steps of a call.
 */
export function requestTarget(target: string): { pathname: string; search: string } {
  if (!target.startsWith('/')) throw new TollgateError('malformed_request', 'the request target must be a path');
  const mark = target.indexOf('?');
  const pathname = mark < 0 ? target : target.slice(0, mark);
  const search = mark < 0 || mark === target.length - 1 ? '' : target.slice(mark);
  if (plainPath.test(pathname) && !pathname.includes('/.') && (search === '' || plainQuery.test(search))) {
    return { pathname, search };
  }
  const url = new URL(`http://gateway.invalid${target}`);
  return { pathname: url.pathname, search: url.search };
}

/** Writes a whole answer; a HEAD request gets the headers only. */
function writeAnswer(
  ctx: GatewayContext,
  status: number,
  headers: Record<string, string | string[]>,
  body: string,
): void {
  const { req, res } = ctx;
  const length = Buffer.byteLength(body);
  res.writeHead(status, { ...headers, 'x-request-id': ctx.requestId, 'content-length': String(length) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
