import { describe, expect, it } from 'vitest';
import { TollgateError } from '../errors/tollgate-error.js';
import { isEmbedded, loadConfig } from './config.js';

function configError(env: Record<string, string>): TollgateError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof TollgateError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('defaults to the embedded drivers on local ports', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      apiPort: 4000,
      gatewayPort: 8080,
      database: { driver: 'pglite', dataDir: '.tollgate/data' },
      counters: { driver: 'memory' },
      bodyLimitBytes: 1024 * 1024,
      shutdownTimeoutMs: 10_000,
      trustProxy: false,
    });
    expect(isEmbedded(config)).toBe(true);
  });

  it('uses the servers named by DATABASE_URL and REDIS_URL', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/tollgate', REDIS_URL: 'redis://cache:6379/0' });
    expect(config.database).toEqual({ driver: 'postgres', url: 'postgres://u:p@db:5432/tollgate' });
    expect(config.counters).toEqual({ driver: 'redis', url: 'redis://cache:6379/0' });
    expect(isEmbedded(config)).toBe(false);
  });

  it('parses a Redis Cluster node list, including IPv6 hosts', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,[::1]:7002' });
    expect(config.counters).toEqual({
      driver: 'redis-cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
  });

  it('prefixes Redis keys and channels with tollgate: unless TOLLGATE_REDIS_PREFIX says otherwise', () => {
    expect(loadConfig({}).redisPrefix).toBe('tollgate:');
    expect(loadConfig({ TOLLGATE_REDIS_PREFIX: 'acme-prod:' }).redisPrefix).toBe('acme-prod:');
    expect(loadConfig({ TOLLGATE_REDIS_PREFIX: 'a.b_c-D:9' }).redisPrefix).toBe('a.b_c-D:9');
  });

  it('samples the gateway access log at the given share, all calls by default', () => {
    expect(loadConfig({}).accessLogSample).toBe(1);
    expect(loadConfig({ TOLLGATE_ACCESS_LOG_SAMPLE: '0.05' }).accessLogSample).toBe(0.05);
    expect(loadConfig({ TOLLGATE_ACCESS_LOG_SAMPLE: '0' }).accessLogSample).toBe(0);
  });

  it('reads sizes and durations with units', () => {
    const config = loadConfig({ TOLLGATE_BODY_LIMIT: '512kb', TOLLGATE_SHUTDOWN_TIMEOUT: '3s' });
    expect(config.bodyLimitBytes).toBe(512 * 1024);
    expect(config.shutdownTimeoutMs).toBe(3000);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', TOLLGATE_API_PORT: ' ' }).apiPort).toBe(4000);
  });

  it.each([
    [{ TOLLGATE_API_PORT: 'abc' }, 'TOLLGATE_API_PORT must be a port number from 0 to 65535 (got "abc")'],
    [{ TOLLGATE_GATEWAY_PORT: '70000' }, 'TOLLGATE_GATEWAY_PORT must be a port number from 0 to 65535 (got "70000")'],
    [
      { TOLLGATE_LOG_LEVEL: 'loud' },
      'TOLLGATE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    ],
    [{ TOLLGATE_BODY_LIMIT: '1gb' }, 'TOLLGATE_BODY_LIMIT must be a size from 1 byte to 64mb'],
    [{ TOLLGATE_TRUST_PROXY: 'maybe' }, 'TOLLGATE_TRUST_PROXY must be true or false (got "maybe")'],
    [{ TOLLGATE_ACCESS_LOG_SAMPLE: '1.5' }, 'TOLLGATE_ACCESS_LOG_SAMPLE must be a number from 0 to 1'],
    [{ TOLLGATE_ACCESS_LOG_SAMPLE: '10%' }, 'TOLLGATE_ACCESS_LOG_SAMPLE must be a number from 0 to 1'],
    [
      { TOLLGATE_REDIS_PREFIX: 'acme{prod}:' },
      'TOLLGATE_REDIS_PREFIX must be 1 to 64 letters, digits, colons, underscores, dots or dashes (got "acme{prod}:")',
    ],
    [{ TOLLGATE_REDIS_PREFIX: 'x'.repeat(65) }, 'TOLLGATE_REDIS_PREFIX must be 1 to 64 letters'],
    [{ REDIS_CLUSTER_NODES: 'a:1,b' }, 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port'],
    [
      { REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'a:1' },
      'REDIS_CLUSTER_NODES must not be set together with REDIS_URL',
    ],
  ])('rejects %j naming the variable', (env, message) => {
    const error = configError(env);
    expect(error.code).toBe('config_invalid');
    expect(error.message).toContain(message);
    expect(error.message).not.toContain('\n');
  });

  it('takes a 32-byte master key in base64 or base64url, and earlier keys for rotation', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const old = Buffer.alloc(32, 9).toString('base64url');
    const config = loadConfig({ TOLLGATE_MASTER_KEY: key, TOLLGATE_MASTER_KEY_PREVIOUS: ` ${old} ,${key}` });
    expect(config.masterKey).toBe(key);
    expect(config.previousMasterKeys).toEqual([old, key]);
    expect(loadConfig({}).masterKey).toBeUndefined();
  });

  it('refuses a master key that is not 32 bytes, without echoing it', () => {
    const short = Buffer.alloc(16, 1).toString('base64');
    const error = configError({ TOLLGATE_MASTER_KEY: short });
    expect(error.message).toBe(
      'TOLLGATE_MASTER_KEY must be 32 random bytes in base64 (generate one with: openssl rand -base64 32)',
    );
    const previous = configError({ TOLLGATE_MASTER_KEY_PREVIOUS: `${Buffer.alloc(32).toString('base64')},nope` });
    expect(previous.message).toMatch(/^TOLLGATE_MASTER_KEY_PREVIOUS must be a comma-separated list of keys, each/);
    expect(previous.message).not.toContain('nope');
  });

  it('names a malformed DATABASE_URL without echoing it (it may hold a password)', () => {
    const error = configError({ DATABASE_URL: 'mysql://admin:hunter2@db/x' });
    expect(error.message).toBe('DATABASE_URL must be a PostgreSQL URL (postgres:// or postgresql://host:port/...)');
    expect(error.message).not.toContain('hunter2');
    expect(error.details).toEqual({ variable: 'DATABASE_URL' });
    expect(configError({ DATABASE_URL: 'not a url' }).message).toMatch(/^DATABASE_URL must be/);
  });

  it('sends SMS through Twilio when all three TWILIO_ settings are given, else to .txt files', () => {
    const sid = `AC${'0123456789abcdef'.repeat(2)}`;
    const twilio = { TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: 'f'.repeat(32), TWILIO_FROM: '+15005550006' };
    expect(loadConfig(twilio).sms).toEqual({
      twilio: { accountSid: sid, authToken: 'f'.repeat(32), from: '+15005550006', apiBase: 'https://api.twilio.com' },
      dir: '.tollgate/sms',
    });
    const service = `MG${'a'.repeat(32)}`;
    const local = loadConfig({ ...twilio, TWILIO_FROM: service, TWILIO_API_BASE: 'http://127.0.0.1:9999/' });
    expect(local.sms.twilio).toMatchObject({ from: service, apiBase: 'http://127.0.0.1:9999' });
    expect(loadConfig({ TOLLGATE_SMS_DIR: '/var/lib/tollgate/sms' }).sms).toEqual({
      twilio: undefined,
      dir: '/var/lib/tollgate/sms',
    });
  });

  it('refuses a partial or malformed Twilio setting, never echoing the auth token', () => {
    const sid = `AC${'0'.repeat(32)}`;
    const partial = configError({ TWILIO_ACCOUNT_SID: sid, TWILIO_FROM: '+15005550006' });
    expect(partial.message).toBe(
      'TWILIO_AUTH_TOKEN must be set too: SMS through Twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM',
    );
    expect(configError({ TWILIO_ACCOUNT_SID: 'AC123' }).message).toMatch(
      /^TWILIO_ACCOUNT_SID must be a Twilio account sid/,
    );
    expect(configError({ TWILIO_FROM: '5005550006' }).message).toMatch(
      /^TWILIO_FROM must be a sending number in E.164/,
    );
    const token = configError({ TWILIO_AUTH_TOKEN: 'short-secret' });
    expect(token.message).toBe('TWILIO_AUTH_TOKEN must be the auth token of the Twilio account');
    expect(token.message).not.toContain('short-secret');
  });
  it('turns Stripe on only with both the secret key and the webhook secret, and points the SDK at STRIPE_API_BASE', () => {
    const stripe = {
      STRIPE_SECRET_KEY: `sk_test_${'a1'.repeat(12)}`,
      STRIPE_WEBHOOK_SECRET: `whsec_${'b2'.repeat(16)}`,
    };
    expect(loadConfig({}).stripe).toBeUndefined();
    expect(loadConfig(stripe).stripe).toEqual({
      secretKey: stripe.STRIPE_SECRET_KEY,
      webhookSecret: stripe.STRIPE_WEBHOOK_SECRET,
      apiBase: undefined,
    });
    expect(loadConfig({ ...stripe, STRIPE_API_BASE: 'http://127.0.0.1:12111/' }).stripe?.apiBase).toBe(
      'http://127.0.0.1:12111',
    );
    expect(loadConfig({ ...stripe, STRIPE_SECRET_KEY: `rk_live_${'c3'.repeat(12)}` }).stripe).toBeDefined();
  });

  it('refuses half the Stripe settings or a malformed one, naming the variable and never echoing a secret', () => {
    const secretKey = `sk_live_${'a1'.repeat(12)}`;
    expect(configError({ STRIPE_SECRET_KEY: secretKey }).message).toBe(
      'STRIPE_WEBHOOK_SECRET must be set too: Stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (or neither, for manual billing)',
    );
    expect(configError({ STRIPE_WEBHOOK_SECRET: `whsec_${'b2'.repeat(16)}` }).message).toMatch(
      /^STRIPE_SECRET_KEY must be set too/,
    );
    const wrongKey = configError({
      STRIPE_SECRET_KEY: 'pk_test_publishable123456',
      STRIPE_WEBHOOK_SECRET: 'whsec_x1234567',
    });
    expect(wrongKey.message).toBe(
      'STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_..., sk_live_...) or restricted key (rk_...)',
    );
    expect(wrongKey.details).toEqual({ variable: 'STRIPE_SECRET_KEY' });
    const wrongSecret = configError({ STRIPE_SECRET_KEY: secretKey, STRIPE_WEBHOOK_SECRET: 'secret-1234567' });
    expect(wrongSecret.message).toBe("STRIPE_WEBHOOK_SECRET must be the webhook endpoint's signing secret (whsec_...)");
    expect(wrongSecret.message).not.toContain('secret-1234567');
    expect(configError({ STRIPE_API_BASE: 'ftp://stripe.local' }).message).toMatch(
      /^STRIPE_API_BASE must be a http\(s\) URL/,
    );
    expect(configError({ STRIPE_API_BASE: 'http://127.0.0.1:12111/v1' }).message).toMatch(
      /^STRIPE_API_BASE must be a base URL with no path/,
    );
  });
});
