import type { GatewayPlugin, PluginDefinition, PluginRequest } from '../index.js';

export interface CorsConfig {
  /** Exact origins (`https://app.example.com`), or `*` for any (never with credentials). */
  origins: string[];
  methods: string[];
  /** Request headers a browser may send; empty: echo what the preflight asks for. */
  headers: string[];
  exposedHeaders: string[];
  credentials: boolean;
  maxAgeSeconds: number;
}

const defaults: CorsConfig = {
  origins: ['*'],
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
  headers: [],
  exposedHeaders: ['RateLimit', 'RateLimit-Policy', 'Retry-After', 'X-Request-Id'],
  credentials: false,
  maxAgeSeconds: 600,
};

const stringList = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === 'string');
const originPattern = /^https?:\/\/[^/\s]+$/;

function header(request: PluginRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * CORS for browser clients of an API: answers preflights (OPTIONS with Origin and
 * Access-Control-Request-Method) at the gateway, before the key check, since browsers send no
 * credentials on them; and adds Access-Control-Allow-Origin (and the exposed headers) to every
 * answer for an allowed origin, the gateway's own errors included, so a browser can read a 429.
 */
export const corsPlugin: PluginDefinition<CorsConfig> = {
  name: 'cors',
  description: 'Cross-origin requests from browsers: preflights answered at the gateway, allowed origins echoed.',
  parseConfig(raw) {
    const input = (raw ?? {}) as Record<string, unknown>;
    const errors: string[] = [];
    const config: CorsConfig = { ...defaults };
    if (input.origins !== undefined) {
      if (!stringList(input.origins) || (input.origins as string[]).length === 0)
        errors.push('origins: a non-empty list');
      else if ((input.origins as string[]).some((origin) => origin !== '*' && !originPattern.test(origin))) {
        errors.push('origins: each is * or scheme://host[:port] without a path');
      } else config.origins = input.origins as string[];
    }
    for (const [field, key] of [
      ['methods', 'methods'],
      ['headers', 'headers'],
      ['exposed_headers', 'exposedHeaders'],
    ] as const) {
      if (input[field] === undefined) continue;
      if (!stringList(input[field])) errors.push(`${field}: a list of names`);
      else config[key] = (input[field] as string[]).map((item) => (key === 'methods' ? item.toUpperCase() : item));
    }
    if (input.credentials !== undefined) {
      if (typeof input.credentials !== 'boolean') errors.push('credentials: true or false');
      else config.credentials = input.credentials;
    }
    if (input.max_age_seconds !== undefined) {
      const age = input.max_age_seconds;
      if (typeof age !== 'number' || !Number.isInteger(age) || age < 0 || age > 86_400) {
        errors.push('max_age_seconds: a whole number from 0 to 86400');
      } else config.maxAgeSeconds = age;
    }
    if (config.credentials && config.origins.includes('*'))
      errors.push('credentials: not with origins "*" (name the origins)');
    return errors.length > 0 ? { ok: false, errors } : { ok: true, config };
  },
  create(config): GatewayPlugin {
    const any = config.origins.includes('*');
    const allowed = new Set(config.origins);
    const allowOrigin = (origin: string | undefined) =>
      origin && (any || allowed.has(origin)) ? (any && !config.credentials ? '*' : origin) : undefined;
    return {
      name: 'cors',
      onPreAuth(request) {
        const origin = header(request, 'origin');
        const asked = header(request, 'access-control-request-method');
        if (request.method !== 'OPTIONS' || !origin || !asked) return { action: 'continue' };
        const allow = allowOrigin(origin);
        if (!allow || !config.methods.includes(asked.toUpperCase())) {
          // A refused preflight: no CORS headers, so the browser blocks the call.
          return { action: 'respond', status: 204, headers: { vary: 'Origin' } };
        }
        const askedHeaders = header(request, 'access-control-request-headers');
        return {
          action: 'respond',
          status: 204,
          headers: {
            'access-control-allow-origin': allow,
            'access-control-allow-methods': config.methods.join(', '),
            ...(config.headers.length > 0
              ? { 'access-control-allow-headers': config.headers.join(', ') }
              : askedHeaders
                ? { 'access-control-allow-headers': askedHeaders }
                : {}),
            ...(config.credentials ? { 'access-control-allow-credentials': 'true' } : {}),
            'access-control-max-age': String(config.maxAgeSeconds),
            vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
          },
        };
      },
      onResponse(request, response) {
        const allow = allowOrigin(header(request, 'origin'));
        if (!allow) return;
        response.headers['access-control-allow-origin'] = allow;
        if (config.credentials) response.headers['access-control-allow-credentials'] = 'true';
        if (config.exposedHeaders.length > 0)
          response.headers['access-control-expose-headers'] = config.exposedHeaders.join(', ');
        if (allow !== '*')
          response.headers.vary = response.headers.vary ? `${response.headers.vary}, Origin` : 'Origin';
      },
    };
  },
};
