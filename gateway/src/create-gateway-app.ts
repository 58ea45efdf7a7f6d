import type { PluginRequest } from '@tollgate/plugins';
import {
  createMetricsRegistry,
  errorBody,
  errorHandler,
  isTollgateError,
  type Logger,
  redactUrl,
  requestId,
  TollgateError,
} from '@tollgate/services';
import Koa, { type Context } from 'koa';
import type { Registry } from 'prom-client';
import { type KeyVerifier, presentedKey, type VerifiedKey } from './keys/key-verifier.js';
import { billingPeriod } from './limits/billing-period.js';
import { limitRequestFor, rateLimitHeaders } from './limits/enforce.js';
import type { LimitDecision, Limiter } from './limits/limiter.js';
import type { TeamPolicyCache } from './limits/team-policies.js';
import type { UsageRecorder } from './metering/usage-recorder.js';
import { gatewayMetrics } from './observability/gateway-metrics.js';
import { type HookAnswer, pluginChainFor } from './plugins/plugin-stage.js';
import { proxyRequest } from './proxy/proxy.js';
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
  /**
   * Share of calls written to the access log, from 0 to 1 (1 by default). Calls answered with a
   * 5xx are always written.
   */
  accessLogSample?: number;
}

export interface GatewayApp {
  app: Koa;
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
  const app = new Koa({ proxy: options.trustProxy });
  app.silent = true;
  app.on('error', (error: Error) => logger.error({ err: error }, 'error outside a request handler'));
  const metrics = gatewayMetrics(registry);
  const sample = options.accessLogSample ?? 1;
  // No generic access-log or metrics middleware here: serve() writes one richer line and the
  // gateway's own series per call, at a fraction of the cost on the hot path.
  app
    .use(requestId())
    .use(errorHandler({ logger, notFound: { code: 'route_not_found', message: 'no API is routed here' } }))
    .use(async (ctx) => {
      if (ctx.path === '/healthz' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        ctx.body = { status: 'ok' };
        return;
      }
      await serve(ctx);
    });

  /** Headers every later answer carries (RateLimit), and the plugins' last word on them. */
  interface CallState {
    pluginRequest?: PluginRequest;
    chain?: ReturnType<typeof pluginChainFor>;
    headers: Record<string, string>;
    api: string;
    key?: VerifiedKey;
    requestBytes?: number;
    responseBytes?: number;
    upstream?: string;
    errorCode?: string;
  }

  /** Writes an answer the gateway makes itself (a hook's or an error), through the response hooks. */
  function answer(ctx: Context, call: CallState, status: number, headers: Record<string, string>, body: unknown): void {
    const all: Record<string, string | string[]> = { ...call.headers, ...headers };
    if (call.chain && call.pluginRequest) call.chain.response(call.pluginRequest, { status, headers: all });
    ctx.status = status;
    for (const [name, value] of Object.entries(all)) ctx.set(name, value);
    ctx.body = body;
  }

  function answerHook(ctx: Context, call: CallState, hook: HookAnswer): void {
    answer(ctx, call, hook.status, hook.headers, hook.body ?? '');
  }

  /** One access-log line and the gateway's series, when the call's answer is complete. */
  function observe(ctx: Context, call: CallState, startedAt: number): void {
    const status = ctx.res.statusCode;
    const seconds = (performance.now() - startedAt) / 1000;
    metrics.requests.inc({ api: call.api, status: String(status) });
    metrics.duration.observe({ api: call.api }, seconds);
    if (call.errorCode === 'upstream_unavailable' || call.errorCode === 'upstream_timeout') {
      metrics.upstreamErrors.inc({ api: call.api, code: call.errorCode });
    }
    if (status < 500 && (sample <= 0 || (sample < 1 && Math.random() >= sample))) return;
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    logger[level](
      {
        requestId: ctx.state.requestId,
        api: call.api,
        ...(call.key ? { team: call.key.teamId, key: call.key.keyId } : {}),
        method: ctx.method,
        url: redactUrl(ctx.originalUrl),
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

  async function serve(ctx: Context): Promise<void> {
    const started = Date.now();
    const startedAt = performance.now();
    const call: CallState = { headers: {}, api: 'unrouted' };
    ctx.res.once('close', () => observe(ctx, call, startedAt));
    try {
      // Dot segments are resolved first, so `/a/../b` cannot climb out of an API's prefix or an
      // upstream's base path.
      const url = new URL(ctx.url, 'http://gateway.invalid');
      const match = routing.current().match(ctx.get('host') || undefined, url.pathname);
      if (!match) throw new TollgateError('route_not_found', `no API is routed at ${url.pathname}`);
      const api = match.api;
      ctx.state.api = api.slug;
      call.api = api.slug;
      const chain = pluginChainFor(api);
      if (!chain.empty) {
        call.chain = chain;
        call.pluginRequest = {
          method: ctx.method,
          path: `${match.upstreamPath}${url.search}`,
          headers: ctx.req.headers,
          requestId: ctx.state.requestId,
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
        const check = { apiId: api.id, method: ctx.method, clientIp: ctx.ip };
        try {
          const verified = options.keys.verify(presented.key, check);
          key = verified instanceof Promise ? await verified : verified;
          ctx.state.key = key;
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
      if (options.limits && key) {
        const policy = await options.limits.policies.get(key.teamId);
        if (!policy) throw new TollgateError('unauthorized', 'this key belongs to no team');
        if (policy.paymentRequired) {
          throw new TollgateError('payment_required', "the team's subscription is unpaid", {
            hint: 'the team pays its open invoice, then calls work again',
          });
        }
        const now = new Date(started);
        const request = limitRequestFor({ policy, keyId: key.keyId, keyLimits: key.limits }, now);
        decision = await checkLimits(options.limits, request, api.failurePolicy);
        const period = request.quota ? billingPeriod(policy.billingAnchor, now) : undefined;
        const headers = rateLimitHeaders(decision, period ? period.end.getTime() - period.start.getTime() : undefined);
        if (headers) Object.assign(call.headers, headers);
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

      ctx.respond = false;
      try {
        const outcome = await proxyRequest({
          req: ctx.req,
          res: ctx.res,
          upstreams: upstreams.setFor(api.id, api.upstreams),
          pathAndQuery: `${match.upstreamPath}${url.search}`,
          timeoutMs: api.timeoutMs,
          context: {
            requestId: ctx.state.requestId,
            clientIp: ctx.ip,
            protocol: ctx.protocol,
            trustProxy: options.trustProxy,
            stripAuthorization,
          },
          extraHeaders,
          maxBodyBytes,
          meter: call,
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
        // Nothing was written: answer in the JSON error shape below.
        ctx.respond = true;
        throw error;
      }
    } catch (error) {
      if (!isTollgateError(error) || ctx.res.headersSent) throw error;
      call.errorCode = error.code;
      const retryAfter = error.details?.retry_after_seconds;
      if (typeof retryAfter === 'number') call.headers['Retry-After'] = String(retryAfter);
      if (error.status >= 500) logger.error({ err: error, requestId: ctx.state.requestId }, error.message);
      answer(ctx, call, error.status, {}, errorBody(error.code, error.message, ctx.state.requestId, error.details));
    }
  }

  function decisionLabel(decision: LimitDecision): string {
    if (!decision.allowed) return decision.refusedBy.kind === 'quota' ? 'quota_exhausted' : 'rate_limited';
    return decision.quota?.overage ? 'overage' : 'allowed';
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
  async function checkLimits(
    limits: NonNullable<GatewayAppOptions['limits']>,
    request: Parameters<Limiter['check']>[0],
    policy: 'fail-open' | 'fail-closed',
  ): Promise<LimitDecision> {
    const started = performance.now();
    try {
      const decision = await limits.limiter.check(request);
      metrics.limiterSeconds.observe((performance.now() - started) / 1000);
      metrics.limiter.inc({ decision: decisionLabel(decision) });
      return decision;
    } catch (error) {
      if (policy === 'fail-open' && limits.fallback) {
        warnFallback(error);
        metrics.limiter.inc({ decision: 'fallback' });
        return limits.fallback.check(request);
      }
      metrics.limiter.inc({ decision: 'unavailable' });
      throw new TollgateError('limiter_unavailable', 'the rate limiter cannot be reached; try again shortly', {
        cause: error,
      });
    }
  }

  return { app, registry, close: () => upstreams.close() };
}
