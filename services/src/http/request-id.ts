import { randomBytes } from 'node:crypto';
import type { Middleware } from 'koa';

export const requestIdHeader = 'x-request-id';

/** An incoming id is kept only when it is short and plain, so it is safe in logs and headers. */
const acceptableId = /^[A-Za-z0-9._:-]{1,128}$/;

export function newRequestId(): string {
  return `req_${randomBytes(12).toString('base64url')}`;
}

declare module 'koa' {
  interface DefaultState {
    requestId: string;
  }
}

/** Gives every request an id (the caller's X-Request-Id when acceptable) and echoes it on the response. */
export function requestId(): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get(requestIdHeader);
    const id = acceptableId.test(incoming) ? incoming : newRequestId();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    await next();
  };
}
