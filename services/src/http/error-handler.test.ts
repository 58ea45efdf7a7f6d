import Router from '@koa/router';
import Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { createLogger } from '../logging/logger.js';
import { errorHandler } from './error-handler.js';
import { listen, type RunningServer } from './http-server.js';
import { jsonBody } from './json-body.js';
import { requestId } from './request-id.js';
import { defineRoute, mountRoutes } from './route.js';

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close(100)));
});

async function serve(handler: Koa.Middleware): Promise<{ url: string; logged: string[] }> {
  const logged: string[] = [];
  const logger = createLogger({
    level: 'error',
    destination: { write: (line: string) => logged.push(line) },
  });
  const app = new Koa();
  app.silent = true;
  app
    .use(requestId())
    .use(errorHandler({ logger }))
    .use(jsonBody({ limitBytes: 1024 }))
    .use(handler);
  const server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  servers.push(server);
  return { url: server.url, logged };
}

describe('errorHandler', () => {
  it('answers an expected failure with its code, status and details', async () => {
    const { url } = await serve(() => {
      throw new TollgateError('rate_limited', 'slow down', { details: { retry_after_s: 3 } });
    });
    const response = await fetch(url);
    expect(response.status).toBe(429);
    expect(await response.json()).toEqual({
      error: {
        code: 'rate_limited',
        message: 'slow down',
        request_id: response.headers.get('x-request-id'),
        details: { retry_after_s: 3 },
      },
    });
  });

  it('hides an unexpected failure behind internal_error and logs it with the request id', async () => {
    const { url, logged } = await serve(() => {
      throw new Error('connection string postgres://admin:hunter2@db leaked');
    });
    const response = await fetch(url);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text).error.code).toBe('internal_error');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain(' at ');
    const requestIdValue = response.headers.get('x-request-id') ?? '';
    expect(logged.join('')).toContain(requestIdValue);
  });
});

describe('routes with a zod body', () => {
  const route = defineRoute({
    method: 'post',
    path: '/v1/things',
    operationId: 'createThing',
    summary: 'Create a thing',
    tags: ['test'],
    body: z.object({ name: z.string().min(1), count: z.number().int().positive() }),
    responses: { 201: { description: 'Created' } },
    handler: (ctx, { body }) => {
      ctx.status = 201;
      ctx.body = { created: body.name, count: body.count };
    },
  });

  async function serveRoute() {
    const router = new Router();
    mountRoutes(router, [route as never]);
    return serve(router.routes() as unknown as Koa.Middleware);
  }

  it('passes a valid body to the handler, typed', async () => {
    const { url } = await serveRoute();
    const response = await fetch(`${url}/v1/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'widget', count: 2 }),
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ created: 'widget', count: 2 });
  });

  it('refuses an invalid body with 400 validation_failed naming the field', async () => {
    const { url } = await serveRoute();
    const response = await fetch(`${url}/v1/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'widget', count: -1 }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as {
      error: { code: string; message: string; details: { issues: { path: string }[] } };
    };
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.message).toMatch(/^count: /);
    expect(body.error.details.issues[0]?.path).toBe('count');
  });

  it('refuses a body that is not JSON with 415', async () => {
    const { url } = await serveRoute();
    const response = await fetch(`${url}/v1/things`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'name=widget',
    });
    expect(response.status).toBe(415);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });
});
