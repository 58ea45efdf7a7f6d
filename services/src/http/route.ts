import type Router from '@koa/router';
import type { Context } from 'koa';
import type { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteResponse {
  description: string;
  schema?: z.ZodType;
  /** application/json unless said otherwise. */
  contentType?: string;
}

/**
 * One HTTP route, described once: the router mounts it, its zod schemas validate requests, and the
 * OpenAPI document is generated from the same definition.
 */
export interface Route<Body extends z.ZodType | undefined = z.ZodType | undefined> {
  method: HttpMethod;
  /** Koa-router path, e.g. `/v1/apis/:slug`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** The JSON request body; the request is refused with 400 `validation_failed` when it does not match. */
  body?: Body;
  responses: Record<number, RouteResponse>;
  handler: (ctx: Context, input: { body: Body extends z.ZodType ? z.output<Body> : undefined }) => unknown;
}

export function defineRoute<Body extends z.ZodType | undefined = undefined>(route: Route<Body>): Route<Body> {
  return route;
}

function parseBody(ctx: Context, schema: z.ZodType): unknown {
  if (ctx.request.rawBody !== undefined && ctx.request.body === undefined) {
    throw new TollgateError('unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
  }
  const parsed = schema.safeParse(ctx.request.body ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
    const first = issues[0];
    throw new TollgateError(
      'validation_failed',
      first ? `${first.path || 'body'}: ${first.message}` : 'the request body is invalid',
      { details: { issues } },
    );
  }
  return parsed.data;
}

export function mountRoutes(router: Router, routes: readonly Route[]): void {
  for (const route of routes) {
    router[route.method](route.operationId, route.path, async (ctx) => {
      const body = route.body ? parseBody(ctx, route.body) : undefined;
      await route.handler(ctx, { body } as never);
    });
  }
}
