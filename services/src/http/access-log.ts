import type { Middleware } from 'koa';
import { type Logger, redactUrl } from '../logging/logger.js';

/** One line per request, written when it ends; credential headers are redacted by the logger. */
export function accessLog(options: { logger: Logger }): Middleware {
  return async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = ctx.status;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      options.logger[level](
        {
          requestId: ctx.state.requestId,
          req: { method: ctx.method, url: redactUrl(ctx.originalUrl), ip: ctx.ip, headers: ctx.headers },
          res: { status },
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        },
        'request',
      );
    }
  };
}
