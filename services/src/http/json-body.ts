import type { IncomingMessage } from 'node:http';
import type { Middleware } from 'koa';
import { TollgateError } from '../errors/tollgate-error.js';

declare module 'koa' {
  interface Request {
    /** Parsed JSON body; undefined when the request had none or was not JSON. */
    body?: unknown;
    /** The exact bytes received, for signature checks (webhooks). */
    rawBody?: Buffer;
  }
}

const jsonType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

function tooLarge(limitBytes: number): TollgateError {
  return new TollgateError('payload_too_large', `the request body is larger than the limit of ${limitBytes} bytes`, {
    details: { limit_bytes: limitBytes },
  });
}

/**
 * Collects the body without an async iterator: leaving one early destroys the socket, and the client
 * would see a reset instead of the 413.
 */
function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limitBytes) {
        cleanup();
        req.pause();
        reject(tooLarge(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Reads request bodies up to `limitBytes`. A declared Content-Length over the limit is refused before
 * reading anything; a chunked body is counted as it arrives and refused when it crosses the limit.
 * JSON bodies (application/json, application/*+json) are parsed; invalid JSON is a 400.
 */
export function jsonBody(options: { limitBytes: number }): Middleware {
  const { limitBytes } = options;
  return async (ctx, next) => {
    const hasBody = ctx.request.length !== undefined ? ctx.request.length > 0 : ctx.get('transfer-encoding') !== '';
    if (!hasBody || ctx.method === 'GET' || ctx.method === 'HEAD') return next();

    if (ctx.request.length !== undefined && ctx.request.length > limitBytes) {
      // The client may still be sending: close the connection after answering instead of reading it.
      ctx.set('Connection', 'close');
      throw tooLarge(limitBytes);
    }
    const raw = await readBody(ctx.req, limitBytes).catch((error: unknown) => {
      if (error instanceof TollgateError) ctx.set('Connection', 'close');
      throw error;
    });
    ctx.request.rawBody = raw;
    if (jsonType.test(ctx.get('content-type'))) {
      try {
        ctx.request.body = JSON.parse(raw.toString('utf8'));
      } catch (error) {
        throw new TollgateError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
      }
    }
    return next();
  };
}
