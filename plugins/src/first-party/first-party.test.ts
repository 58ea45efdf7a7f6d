import { describe, expect, it } from 'vitest';
import type { PluginRequest, PluginResponse } from '../index.js';
import { corsPlugin } from './cors.js';
import { findPlugin } from './index.js';
import { requestSizeLimitPlugin } from './request-size-limit.js';

const request = (method: string, headers: Record<string, string>): PluginRequest => ({
  method,
  path: '/v1/things',
  headers,
  requestId: 'req_test',
});

function cors(config: unknown) {
  const parsed = corsPlugin.parseConfig(config);
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  return corsPlugin.create(parsed.config);
}

describe('cors plugin', () => {
  it('answers an allowed preflight before the key check, and refuses an unknown origin', async () => {
    const plugin = cors({ origins: ['https://app.example.com'], credentials: true, max_age_seconds: 60 });
    const allowed = await plugin.onPreAuth?.(
      request('OPTIONS', {
        origin: 'https://app.example.com',
        'access-control-request-method': 'post',
        'access-control-request-headers': 'content-type, x-api-key',
      }),
    );
    expect(allowed).toMatchObject({
      action: 'respond',
      status: 204,
      headers: {
        'access-control-allow-origin': 'https://app.example.com',
        'access-control-allow-headers': 'content-type, x-api-key',
        'access-control-allow-credentials': 'true',
        'access-control-max-age': '60',
      },
    });
    const refused = await plugin.onPreAuth?.(
      request('OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'GET' }),
    );
    expect(refused).toEqual({ action: 'respond', status: 204, headers: { vary: 'Origin' } });
    // Not a preflight: on to the key check.
    expect(await plugin.onPreAuth?.(request('GET', { origin: 'https://app.example.com' }))).toEqual({
      action: 'continue',
    });
  });

  it('adds the allowed origin and exposed headers to answers', async () => {
    const plugin = cors({ origins: ['*'] });
    const response: PluginResponse = { status: 429, headers: {} };
    await plugin.onResponse?.(request('GET', { origin: 'https://any.example' }), response);
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['access-control-expose-headers']).toContain('RateLimit');
    const none: PluginResponse = { status: 200, headers: {} };
    await plugin.onResponse?.(request('GET', {}), none);
    expect(none.headers).toEqual({});
  });

  it('rejects bad configuration with one message per problem', () => {
    const parsed = corsPlugin.parseConfig({ origins: ['*'], credentials: true, max_age_seconds: -1, methods: 'GET' });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.errors).toEqual([
        'methods: a list of names',
        'max_age_seconds: a whole number from 0 to 86400',
        'credentials: not with origins "*" (name the origins)',
      ]);
    }
    expect(corsPlugin.parseConfig({ origins: ['https://a.example/path'] }).ok).toBe(false);
  });
});

describe('request-size-limit plugin', () => {
  it('refuses a declared body over the limit with 413, and hands the limit on for streamed bodies', async () => {
    const parsed = requestSizeLimitPlugin.parseConfig({ max_bytes: 10 });
    if (!parsed.ok) throw new Error('config');
    const plugin = requestSizeLimitPlugin.create(parsed.config);
    const big = await plugin.onRequest?.(request('POST', { 'content-length': '11' }));
    expect(big).toMatchObject({ action: 'respond', status: 413 });
    if (big?.action === 'respond') expect(JSON.parse(big.body ?? '{}').error.code).toBe('payload_too_large');
    expect(await plugin.onRequest?.(request('POST', { 'content-length': '10' }))).toEqual({
      action: 'continue',
      maxBodyBytes: 10,
    });
    expect(await plugin.onRequest?.(request('POST', { 'transfer-encoding': 'chunked' }))).toEqual({
      action: 'continue',
      maxBodyBytes: 10,
    });
    expect(requestSizeLimitPlugin.parseConfig({ max_bytes: '10' }).ok).toBe(false);
  });

  it('is found by name among the first-party plugins', () => {
    expect(findPlugin('request-size-limit')?.name).toBe('request-size-limit');
    expect(findPlugin('cors')?.name).toBe('cors');
    expect(findPlugin('nope')).toBeUndefined();
  });
});
