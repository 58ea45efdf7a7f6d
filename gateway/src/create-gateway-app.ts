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
import { proxyRequest } from './proxy/proxy.js';
import { UpstreamRegistry } from './proxy/upstreams.js';
import { type RoutingSource, staticRouting } from './routing/routing-snapshot.js';

export interface GatewayAppOptions {
  logger: Logger;
  trustProxy: boolean;
  registry?: Registry;
  /** The APIs to route; none when absent. */
  routing?: RoutingSource;
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
            stripAuthorization: false,
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
