import type { Middleware } from 'koa';
import type { ErrorCode } from '../errors/error-codes.js';
import { isTollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';
import { errorBody } from './error-body.js';

/** Codes for the HTTP errors Koa and the router raise themselves. */
const codeForStatus: Record<number, { code: ErrorCode; message: string }> = {
  400: { code: 'validation_failed', message: 'the request is invalid' },
  404: { code: 'not_found', message: 'no such resource' },
  405: { code: 'method_not_allowed', message: 'this method is not allowed on this resource' },
  413: { code: 'payload_too_large', message: 'the request body is too large' },
  415: { code: 'unsupported_media_type', message: 'unsupported content type' },
  501: { code: 'not_implemented', message: 'this method is not supported' },
};

interface HttpErrorLike {
  status?: unknown;
  expose?: unknown;
  headers?: Record<string, string>;
}

/**
 * The edge where every failure becomes `{"error":{code,message,request_id}}`. Expected failures
 * (TollgateError) keep their code and message; unexpected ones are logged with the request id and
 * answered as a bare 500: never a stack trace, never an internal message.
 */
export function errorHandler(options: { logger: Logger; notFound?: { code: ErrorCode; message: string } }): Middleware {
  const notFound = options.notFound ?? { code: 'not_found', message: 'no such resource' };
  return async (ctx, next) => {
    try {
      await next();
      // A status set without a body (no route matched; the router's 405/501, which also sets Allow).
      if (ctx.status >= 400 && (ctx.body === undefined || ctx.body === null)) {
        const status = ctx.status;
        const known = status === 404 ? notFound : codeForStatus[status];
        if (known) {
          // Koa's 404 is implicit and a body would turn it into 200: make it explicit first.
          ctx.status = status;
          ctx.body = errorBody(known.code, known.message, ctx.state.requestId);
        }
      }
    } catch (error) {
      const requestId = ctx.state.requestId;
      if (isTollgateError(error)) {
        ctx.status = error.status;
        // RFC 9110 section 10.2.3: tell a refused client when to come back.
        const retryAfter = error.details?.retry_after_seconds;
        if (typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
        ctx.body = errorBody(error.code, error.message, requestId, error.details);
        if (error.status >= 500) options.logger.error({ err: error, requestId }, error.message);
        return;
      }
      const httpError = error as HttpErrorLike;
      const status = typeof httpError.status === 'number' ? httpError.status : 500;
      const known = codeForStatus[status];
      if (known && httpError.expose !== false) {
        ctx.status = status;
        for (const [name, value] of Object.entries(httpError.headers ?? {})) ctx.set(name, value);
        ctx.body = errorBody(known.code, known.message, requestId);
        return;
      }
      options.logger.error({ err: error, requestId }, 'unhandled error');
      ctx.status = 500;
      ctx.body = errorBody('internal_error', 'something went wrong on our side', requestId);
    }
  };
}
