import { createLogger, listen, type RunningServer } from '@tollgate/services';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayApp, requestTarget } from './create-gateway-app.js';

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

describe('request target', () => {
  // The fast path must read every target exactly as the URL parser does: routing and the path sent
  // upstream depend on it (a dot segment left unresolved would climb out of an API's prefix).
  const viaUrl = (target: string) => {
    const url = new URL(`http://gateway.invalid${target}`);
    return { pathname: url.pathname, search: url.search };
  };
  const alphabet = [
    'a',
    'b',
    '/',
    '.',
    '..',
    '%2e',
    '%2E',
    '?',
    '&',
    '=',
    "'",
    '<',
    ' ',
    '#',
    '\\',
    '~',
    '%20',
    ':',
    '@',
  ];

  it('matches the URL parser on tricky targets', () => {
    for (const target of [
      '/a/b',
      '/a/../b',
      '/a/./b',
      '/.well-known/x',
      '//evil.example/x',
      '/a?',
      "/a?q='x'",
      '/a/%2e%2e/b',
      '/a\\b',
      '/a?b#c',
      '/a b',
    ]) {
      expect(requestTarget(target), target).toEqual(viaUrl(target));
    }
  });

  it('matches the URL parser on 5,000 random targets', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let i = 0; i < 5_000; i++) {
      let target = '/';
      const length = next() % 12;
      for (let j = 0; j < length; j++) target += alphabet[next() % alphabet.length];
      expect(requestTarget(target), target).toEqual(viaUrl(target));
    }
  });

  it('refuses a target that is not a path', () => {
    expect(() => requestTarget('http://example.com/')).toThrow(/must be a path/);
  });
});
