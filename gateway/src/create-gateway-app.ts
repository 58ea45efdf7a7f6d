import {
  accessLog,
  createMetricsRegistry,
  errorHandler,
  httpMetrics,
  type Logger,
  requestId,
  TollgateError,
} from '@tollgate/services';
import Koa from 'koa';
import type { Registry } from 'prom-client';
import { type KeyVerifier, presentedKey } from './keys/key-verifier.js';
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
  app
    .use(requestId())
    .use(accessLog({ logger }))
    .use(httpMetrics({ registry, component: 'gateway' }))
    .use(errorHandler({ logger, notFound: { code: 'route_not_found', message: 'no API is routed here' } }))
    .use(async (ctx) => {
      if (ctx.path === '/healthz' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
        ctx.body = { status: 'ok' };
        return;
      }
      // Dot segments are resolved first, so `/a/../b` cannot climb out of an API's prefix or an
      // upstream's base path.
      const url = new URL(ctx.url, 'http://gateway.invalid');
      const match = routing.current().match(ctx.get('host') || undefined, url.pathname);
      if (!match) throw new TollgateError('route_not_found', `no API is routed at ${url.pathname}`);
      ctx.state.api = match.api.slug;
      // API key (gateway/src/keys): verified before anything else is spent on the request.
      let stripAuthorization = false;
      if (options.keys) {
        const presented = presentedKey(ctx.req.headers);
        stripAuthorization = presented.inAuthorization;
        const check = { apiId: match.api.id, method: ctx.method, clientIp: ctx.ip };
        try {
          const verified = options.keys.verify(presented.key, check);
          ctx.state.key = verified instanceof Promise ? await verified : verified;
        } catch (error) {
          // RFC 6750 section 3: a 401 names the scheme, and says why when a key was sent.
          if (error instanceof TollgateError && error.status === 401) {
            const why = presented.key === undefined ? '' : ', error="invalid_token"';
            ctx.set('WWW-Authenticate', `Bearer realm="tollgate"${why}`);
          }
          throw error;
        }
      }
      ctx.respond = false;
      try {
        await proxyRequest({
          req: ctx.req,
          res: ctx.res,
          upstreams: upstreams.setFor(match.api.id, match.api.upstreams),
          pathAndQuery: `${match.upstreamPath}${url.search}`,
          timeoutMs: match.api.timeoutMs,
          context: {
            requestId: ctx.state.requestId,
            clientIp: ctx.ip,
            protocol: ctx.protocol,
            trustProxy: options.trustProxy,
            stripAuthorization,
          },
        });
      } catch (error) {
        // Nothing was written: let the error handler answer in the JSON error shape.
        ctx.respond = true;
        throw error;
      }
    });
  return { app, registry, close: () => upstreams.close() };
}
