import { createLogger, listen, type RunningServer } from '@tollgate/services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp } from './create-gateway-app.js';

let server: RunningServer;
beforeAll(async () => {
  const { app } = createGatewayApp({ logger: createLogger({ level: 'silent' }), trustProxy: false });
  server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
});
afterAll(() => server.close(1_000));

describe('gateway skeleton', () => {
  it('answers its health check', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('answers any other path with 404 route_not_found in the JSON error shape', async () => {
    const response = await fetch(`${server.url}/weather/v1/today?city=Oslo`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(404);
    const body = await response.json();
    expect(body).toEqual({
      error: {
        code: 'route_not_found',
        message: 'no API is routed at /weather/v1/today',
        request_id: response.headers.get('x-request-id'),
      },
    });
  });
});
