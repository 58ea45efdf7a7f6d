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

export interface GatewayAppOptions {
  logger: Logger;
  trustProxy: boolean;
  registry?: Registry;
}

/** Paths the gateway answers itself; an API can never be routed at them. */
export const reservedGatewayPaths = ['/healthz'] as const;

/**
 * The data plane. This skeleton answers its own health check and refuses everything else with 404
 * `route_not_found`; routing, keys, limits, metering and proxying plug in ahead of that fallback.
 */
export function createGatewayApp(options: GatewayAppOptions): { app: Koa; registry: Registry } {
  const registry = options.registry ?? createMetricsRegistry();
  const logger = options.logger.child({ component: 'gateway' });
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
      throw new TollgateError('route_not_found', `no API is routed at ${ctx.path}`);
    });
  return { app, registry };
}
