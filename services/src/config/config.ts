import { z } from 'zod';
import { type Currency, currencySchema } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { LoginProvidersConfig } from '../identity/oauth/providers.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export type DatabaseConfig = { driver: 'postgres'; url: string } | { driver: 'pglite'; dataDir: string };

export type CounterConfig =
  | { driver: 'redis'; url: string }
  | { driver: 'redis-cluster'; nodes: { host: string; port: number }[] }
  | { driver: 'memory' };

export interface TollgateConfig {
  /** Interface the API and the gateway bind to. */
  host: string;
  /** 0 picks a free port. */
  apiPort: number;
  gatewayPort: number;
  database: DatabaseConfig;
  counters: CounterConfig;
  /**
   * Put before every Redis key and pub/sub channel Tollgate uses (`TOLLGATE_REDIS_PREFIX`), so several
   * installations (or test runs) can share one Redis without seeing each other's counters, batches
   * and messages.
   */
  redisPrefix: string;
  logLevel: LogLevel;
  /** Largest accepted request body on the API, in bytes. */
  bodyLimitBytes: number;
  /** How long a shutdown waits for in-flight requests before cutting connections, in milliseconds. */
  shutdownTimeoutMs: number;
  /** Trust X-Forwarded-For / X-Forwarded-Proto from a reverse proxy in front of Tollgate. */
  trustProxy: boolean;
  /** When set, GET /metrics requires `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /**
   * Encrypts secrets at rest and derives the token-signing key. Unset: generated once into
   * `<data dir>/master.key` (fine for one machine; set it when several processes share a database).
   */
  masterKey: string | undefined;
  /** Earlier master keys, still accepted for decryption while secrets are re-encrypted. */
  previousMasterKeys: string[];
  /** Where the embedded database and the generated master key live. */
  dataDir: string;
  /** Email of the operator account created on a fresh installation. */
  operatorEmail: string;
  /** Outgoing mail: SMTP when `smtpUrl` is set, else .eml files in `dir`. */
  mail: { smtpUrl: string | undefined; from: string; dir: string };
  /** Outgoing text messages (SMS codes): through Twilio when it is set, else .txt files in `dir`. */
  sms: {
    twilio: { accountSid: string; authToken: string; from: string; apiBase: string } | undefined;
    dir: string;
  };
  /**
   * Base URL people reach the API at, used in links sent by email (verification, reset,
   * invitations). Unset: the API's own listening URL.
   */
  publicUrl: string | undefined;
  /** Share of gateway calls written to the access log (0 to 1); 5xx answers are always written. */
  accessLogSample: number;
  /** The operator's reporting currency (TOLLGATE_BASE_CURRENCY): exchange rates convert into it. */
  baseCurrency: Currency;
  /** Logging in with GitHub, Google and Apple: each is on when its client id and secret are set. */
  loginProviders: LoginProvidersConfig;
  /** Team SSO issuers may be on private or loopback addresses (an identity provider inside the network). */
  ssoPrivateIssuers: boolean;
  /** Webhook endpoints may be on private or loopback addresses (receivers inside the network, tests). */
  webhooksAllowPrivate: boolean;
  /** Stripe: on when the secret key and the webhook signing secret are set; billing is manual without it. */
  stripe: StripeConfig | undefined;
  /** Days a past_due subscription is still served before the gateway answers 402 (TOLLGATE_BILLING_GRACE_DAYS). */
  billingGraceDays: number;
  /** Days a manual invoice has to be paid before its subscription is past due (TOLLGATE_BILLING_PAYMENT_TERMS_DAYS). */
  billingPaymentTermsDays: number;
}

export interface StripeConfig {
  /** `sk_test_...`, `sk_live_...` or a restricted `rk_...` key. */
  secretKey: string;
  /** The webhook endpoint's signing secret, `whsec_...`. */
  webhookSecret: string;
  /** Where the SDK sends requests instead of api.stripe.com (a proxy, or the local Stripe of the tests). */
  apiBase: string | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Variables whose values may hold credentials: errors name them but never echo their value. */
const secretVariables = new Set([
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'TOLLGATE_METRICS_TOKEN',
  'TOLLGATE_MASTER_KEY',
  'TOLLGATE_MASTER_KEY_PREVIOUS',
  'SMTP_URL',
  'TWILIO_AUTH_TOKEN',
  'TOLLGATE_GITHUB_CLIENT_SECRET',
  'TOLLGATE_GOOGLE_CLIENT_SECRET',
  'TOLLGATE_APPLE_CLIENT_SECRET',
  'TOLLGATE_APPLE_PRIVATE_KEY',
  'STRIPE_SECRET_KEY',
  'STRIPE_WEBHOOK_SECRET',
]);

const port = z
  .string()
  .regex(/^\d{1,5}$/, 'must be a port number from 0 to 65535')
  .transform(Number)
  .refine((value) => value <= 65_535, 'must be a port number from 0 to 65535');

function urlWithProtocols(protocols: string[], what: string) {
  const expected = `must be a ${what} URL (${protocols.map((p) => `${p}//`).join(' or ')}host:port/...)`;
  return z.string().refine((value) => {
    try {
      const url = new URL(value);
      return protocols.includes(url.protocol) && url.hostname !== '';
    } catch {
      return false;
    }
  }, expected);
}

const clusterNodes = z.string().transform((value, ctx) => {
  const nodes: { host: string; port: number }[] = [];
  for (const entry of value.split(',').map((part) => part.trim())) {
    const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    const portNumber = Number(match?.[2]);
    if (!match?.[1] || portNumber < 1 || portNumber > 65_535) {
      ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of host:port' });
      return z.NEVER;
    }
    nodes.push({ host: match[1].replace(/^\[|\]$/g, ''), port: portNumber });
  }
  return nodes;
});

const units: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2 };
const byteSize = z.string().transform((value, ctx) => {
  const match = /^(\d+)\s*(b|kb|mb)?$/i.exec(value.trim());
  const bytes = match ? Number(match[1]) * (units[(match[2] ?? 'b').toLowerCase()] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > 64 * 1024 ** 2) {
    ctx.addIssue({ code: 'custom', message: 'must be a size from 1 byte to 64mb, like 1048576, 512kb or 1mb' });
    return z.NEVER;
  }
  return bytes;
});

const durations: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };
const duration = z.string().transform((value, ctx) => {
  const match = /^(\d+)\s*(ms|s|m)?$/i.exec(value.trim());
  const ms = match ? Number(match[1]) * (durations[(match[2] ?? 'ms').toLowerCase()] ?? 1) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms > 10 * 60_000) {
    ctx.addIssue({ code: 'custom', message: 'must be a duration up to 10m, like 10000, 500ms, 10s or 1m' });
    return z.NEVER;
  }
  return ms;
});

const boolean = z.string().transform((value, ctx) => {
  const normalized = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(normalized)) return true;
  if (['0', 'false', 'no', 'off'].includes(normalized)) return false;
  ctx.addIssue({ code: 'custom', message: 'must be true or false' });
  return z.NEVER;
});

const masterKeyMessage = 'must be 32 random bytes in base64 (generate one with: openssl rand -base64 32)';

/** 32 bytes in base64 or base64url, or undefined. */
function decodeMasterKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === 32 ? key : undefined;
}

const masterKey = z.string().refine((value) => decodeMasterKey(value) !== undefined, masterKeyMessage);

/** `TOLLGATE_REDIS_PREFIX` when unset: the key and channel names Tollgate has always used. */
export const defaultRedisPrefix = 'tollgate:';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Every variable Tollgate reads, in one schema. docs/configuration.md documents each of them;
 * `configVariables` below lists them for that check.
 */
export const configSchema = z
  .object({
    TOLLGATE_HOST: z.string().min(1, 'must be a host name or IP address').default('127.0.0.1'),
    TOLLGATE_API_PORT: port.default(4000),
    TOLLGATE_GATEWAY_PORT: port.default(8080),
    DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:'], 'PostgreSQL').optional(),
    TOLLGATE_DATA_DIR: z.string().min(1).default('.tollgate/data'),
    REDIS_URL: urlWithProtocols(['redis:', 'rediss:'], 'Redis').optional(),
    REDIS_CLUSTER_NODES: clusterNodes.optional(),
    // No braces: a prefix goes inside the usage keys' hash tag, and `{` or `}` would break it.
    TOLLGATE_REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1 to 64 letters, digits, colons, underscores, dots or dashes')
      .default(defaultRedisPrefix),
    TOLLGATE_LOG_LEVEL: z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` }).default('info'),
    TOLLGATE_BODY_LIMIT: byteSize.default(1024 * 1024),
    TOLLGATE_SHUTDOWN_TIMEOUT: duration.default(10_000),
    TOLLGATE_TRUST_PROXY: boolean.default(false),
    TOLLGATE_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    TOLLGATE_ACCESS_LOG_SAMPLE: z
      .string()
      .regex(/^(0(\.\d+)?|1(\.0+)?)$/, 'must be a number from 0 to 1, like 1, 0.1 or 0')
      .transform(Number)
      .default(1),
    SMTP_URL: urlWithProtocols(['smtp:', 'smtps:'], 'SMTP').optional(),
    TOLLGATE_MAIL_FROM: z.string().min(3).default('Tollgate <no-reply@localhost>'),
    TOLLGATE_MAIL_DIR: z.string().min(1).default('.tollgate/mail'),
    TOLLGATE_PUBLIC_URL: urlWithProtocols(['http:', 'https:'], 'http(s)').optional(),
    TWILIO_ACCOUNT_SID: z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio account sid: AC and 32 hex digits')
      .optional(),
    TWILIO_AUTH_TOKEN: z.string().min(16, 'must be the auth token of the Twilio account').optional(),
    TWILIO_FROM: z
      .string()
      .regex(
        /^(\+[1-9][0-9]{6,14}|MG[0-9a-fA-F]{32})$/,
        'must be a sending number in E.164 form (+15551234567) or a messaging service sid (MG and 32 hex digits)',
      )
      .optional(),
    TWILIO_API_BASE: urlWithProtocols(['http:', 'https:'], 'http(s)').default('https://api.twilio.com'),
    TOLLGATE_SMS_DIR: z.string().min(1).default('.tollgate/sms'),
    TOLLGATE_OPERATOR_EMAIL: z
      .string()
      .regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address')
      .default('admin@localhost'),
    TOLLGATE_MASTER_KEY: masterKey.optional(),
    TOLLGATE_MASTER_KEY_PREVIOUS: z
      .string()
      .transform((value, ctx) => {
        const keys = value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean);
        if (keys.some((key) => decodeMasterKey(key) === undefined)) {
          ctx.addIssue({
            code: 'custom',
            message: `must be a comma-separated list of keys, each ${masterKeyMessage.slice(8)}`,
          });
          return z.NEVER;
        }
        return keys;
      })
      .optional(),
    TOLLGATE_SSO_PRIVATE_ISSUERS: boolean.default(false),
    TOLLGATE_WEBHOOKS_ALLOW_PRIVATE: boolean.default(false),
    TOLLGATE_GITHUB_CLIENT_ID: z.string().min(1).optional(),
    TOLLGATE_GITHUB_CLIENT_SECRET: z.string().min(1).optional(),
    TOLLGATE_BASE_CURRENCY: z
      .enum(currencySchema.options, { error: `must be one of ${currencySchema.options.join(', ')}` })
      .default('USD'),
    TOLLGATE_GITHUB_URL: urlWithProtocols(['http:', 'https:'], 'http(s)').default('https://github.com'),
    TOLLGATE_GITHUB_API_URL: urlWithProtocols(['http:', 'https:'], 'http(s)').default('https://api.github.com'),
    TOLLGATE_GOOGLE_CLIENT_ID: z.string().min(1).optional(),
    TOLLGATE_GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
    TOLLGATE_GOOGLE_ISSUER: urlWithProtocols(['http:', 'https:'], 'http(s)').default('https://accounts.google.com'),
    TOLLGATE_APPLE_CLIENT_ID: z.string().min(1).optional(),
    TOLLGATE_APPLE_TEAM_ID: z.string().min(1).optional(),
    TOLLGATE_APPLE_KEY_ID: z.string().min(1).optional(),
    TOLLGATE_APPLE_PRIVATE_KEY: z
      .string()
      .transform((value) => value.replace(/\\n/g, '\n'))
      .refine((value) => /-----BEGIN PRIVATE KEY-----[\s\S]+-----END PRIVATE KEY-----/.test(value), {
        message: 'must be the PKCS#8 PEM of the .p8 key from Apple (newlines may be written as \\n)',
      })
      .optional(),
    TOLLGATE_APPLE_CLIENT_SECRET: z.string().min(1).optional(),
    TOLLGATE_APPLE_ISSUER: urlWithProtocols(['http:', 'https:'], 'http(s)').default('https://appleid.apple.com'),
    TOLLGATE_BILLING_GRACE_DAYS: z
      .string()
      .regex(/^\d{1,3}$/, 'must be a whole number of days from 0 to 365')
      .transform(Number)
      .refine((value) => value <= 365, 'must be a whole number of days from 0 to 365')
      .default(7),
    TOLLGATE_BILLING_PAYMENT_TERMS_DAYS: z
      .string()
      .regex(/^\d{1,3}$/, 'must be a whole number of days from 0 to 365')
      .transform(Number)
      .refine((value) => value <= 365, 'must be a whole number of days from 0 to 365')
      .default(14),
    STRIPE_SECRET_KEY: z
      .string()
      .regex(
        /^(sk_test_|sk_live_|rk_test_|rk_live_)[A-Za-z0-9_]{8,}$/,
        'must be a Stripe secret key (sk_test_..., sk_live_...) or restricted key (rk_...)',
      )
      .optional(),
    STRIPE_WEBHOOK_SECRET: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/=_-]{8,}$/, "must be the webhook endpoint's signing secret (whsec_...)")
      .optional(),
    // The SDK takes a host, a port and a protocol: a path would be silently dropped.
    STRIPE_API_BASE: urlWithProtocols(['http:', 'https:'], 'http(s)')
      .refine((value) => {
        try {
          const url = new URL(value);
          return url.pathname === '/' && url.search === '' && url.username === '';
        } catch {
          return true;
        }
      }, 'must be a base URL with no path, query or credentials, like https://host:port')
      .optional(),
  })
  .superRefine((env, ctx) => {
    // Twilio needs all three; a partial set is a typo, not a wish for the .txt fallback.
    const twilio = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM'] as const;
    const missingTwilio = twilio.filter((name) => env[name] === undefined);
    if (missingTwilio.length > 0 && missingTwilio.length < twilio.length) {
      ctx.addIssue({
        code: 'custom',
        path: [missingTwilio[0] ?? 'TWILIO_ACCOUNT_SID'],
        message: `must be set too: SMS through Twilio needs ${twilio.join(', ')}`,
      });
    }
    const pairs = [
      ['TOLLGATE_GITHUB_CLIENT_ID', 'TOLLGATE_GITHUB_CLIENT_SECRET'],
      ['TOLLGATE_GOOGLE_CLIENT_ID', 'TOLLGATE_GOOGLE_CLIENT_SECRET'],
    ] as const;
    for (const [id, secret] of pairs) {
      if ((env[id] === undefined) !== (env[secret] === undefined)) {
        const missing = env[id] === undefined ? id : secret;
        ctx.addIssue({
          code: 'custom',
          path: [missing],
          message: `must be set together with ${missing === id ? secret : id}`,
        });
      }
    }
    if (env.TOLLGATE_APPLE_CLIENT_ID !== undefined && env.TOLLGATE_APPLE_CLIENT_SECRET === undefined) {
      for (const name of ['TOLLGATE_APPLE_TEAM_ID', 'TOLLGATE_APPLE_KEY_ID', 'TOLLGATE_APPLE_PRIVATE_KEY'] as const) {
        if (env[name] === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'must be set for Sign in with Apple (or set TOLLGATE_APPLE_CLIENT_SECRET)',
          });
          return;
        }
      }
    }
    // Stripe needs both: without the signing secret its webhooks could not be verified.
    if ((env.STRIPE_SECRET_KEY === undefined) !== (env.STRIPE_WEBHOOK_SECRET === undefined)) {
      const missing = env.STRIPE_SECRET_KEY === undefined ? 'STRIPE_SECRET_KEY' : 'STRIPE_WEBHOOK_SECRET';
      ctx.addIssue({
        code: 'custom',
        path: [missing],
        message:
          'must be set too: Stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET (or neither, for manual billing)',
      });
    }
    if (env.REDIS_URL !== undefined && env.REDIS_CLUSTER_NODES !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_CLUSTER_NODES'],
        message: 'must not be set together with REDIS_URL (use one or the other)',
      });
    }
  });

export const configVariables = Object.keys(configSchema.shape) as (keyof typeof configSchema.shape)[];

/**
 * Reads the configuration once, at start. Empty variables count as unset. The first problem found
 * is thrown as a `config_invalid` error whose message names the variable and what it expects.
 */
export function loadConfig(env: Env): TollgateConfig {
  const input: Record<string, string> = {};
  for (const name of configVariables) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') input[name] = value;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? 'configuration');
    const received = input[variable];
    const shown = received === undefined || secretVariables.has(variable) ? '' : ` (got ${JSON.stringify(received)})`;
    // No hint: the message already says what is expected, and start-up errors stay on one line.
    throw new TollgateError('config_invalid', `${variable} ${issue?.message ?? 'is invalid'}${shown}`, {
      details: { variable },
    });
  }
  const env_ = parsed.data;
  return {
    host: env_.TOLLGATE_HOST,
    apiPort: env_.TOLLGATE_API_PORT,
    gatewayPort: env_.TOLLGATE_GATEWAY_PORT,
    database:
      env_.DATABASE_URL === undefined
        ? { driver: 'pglite', dataDir: env_.TOLLGATE_DATA_DIR }
        : { driver: 'postgres', url: env_.DATABASE_URL },
    counters:
      env_.REDIS_URL !== undefined
        ? { driver: 'redis', url: env_.REDIS_URL }
        : env_.REDIS_CLUSTER_NODES !== undefined
          ? { driver: 'redis-cluster', nodes: env_.REDIS_CLUSTER_NODES }
          : { driver: 'memory' },
    redisPrefix: env_.TOLLGATE_REDIS_PREFIX,
    logLevel: env_.TOLLGATE_LOG_LEVEL,
    bodyLimitBytes: env_.TOLLGATE_BODY_LIMIT,
    shutdownTimeoutMs: env_.TOLLGATE_SHUTDOWN_TIMEOUT,
    trustProxy: env_.TOLLGATE_TRUST_PROXY,
    metricsToken: env_.TOLLGATE_METRICS_TOKEN,
    accessLogSample: env_.TOLLGATE_ACCESS_LOG_SAMPLE,
    masterKey: env_.TOLLGATE_MASTER_KEY,
    previousMasterKeys: env_.TOLLGATE_MASTER_KEY_PREVIOUS ?? [],
    dataDir: env_.TOLLGATE_DATA_DIR,
    operatorEmail: env_.TOLLGATE_OPERATOR_EMAIL,
    mail: { smtpUrl: env_.SMTP_URL, from: env_.TOLLGATE_MAIL_FROM, dir: env_.TOLLGATE_MAIL_DIR },
    sms: {
      twilio:
        env_.TWILIO_ACCOUNT_SID && env_.TWILIO_AUTH_TOKEN && env_.TWILIO_FROM
          ? {
              accountSid: env_.TWILIO_ACCOUNT_SID,
              authToken: env_.TWILIO_AUTH_TOKEN,
              from: env_.TWILIO_FROM,
              apiBase: env_.TWILIO_API_BASE.replace(/\/+$/, ''),
            }
          : undefined,
      dir: env_.TOLLGATE_SMS_DIR,
    },
    publicUrl: env_.TOLLGATE_PUBLIC_URL?.replace(/\/+$/, ''),
    loginProviders: loginProvidersFrom(env_),
    ssoPrivateIssuers: env_.TOLLGATE_SSO_PRIVATE_ISSUERS,
    webhooksAllowPrivate: env_.TOLLGATE_WEBHOOKS_ALLOW_PRIVATE,
    stripe:
      env_.STRIPE_SECRET_KEY && env_.STRIPE_WEBHOOK_SECRET
        ? {
            secretKey: env_.STRIPE_SECRET_KEY,
            webhookSecret: env_.STRIPE_WEBHOOK_SECRET,
            apiBase: env_.STRIPE_API_BASE?.replace(/\/+$/, ''),
          }
        : undefined,
    baseCurrency: env_.TOLLGATE_BASE_CURRENCY,
    billingGraceDays: env_.TOLLGATE_BILLING_GRACE_DAYS,
    billingPaymentTermsDays: env_.TOLLGATE_BILLING_PAYMENT_TERMS_DAYS,
  };
}

function loginProvidersFrom(env: z.output<typeof configSchema>): LoginProvidersConfig {
  return {
    github:
      env.TOLLGATE_GITHUB_CLIENT_ID && env.TOLLGATE_GITHUB_CLIENT_SECRET
        ? {
            clientId: env.TOLLGATE_GITHUB_CLIENT_ID,
            clientSecret: env.TOLLGATE_GITHUB_CLIENT_SECRET,
            url: env.TOLLGATE_GITHUB_URL,
            apiUrl: env.TOLLGATE_GITHUB_API_URL,
          }
        : undefined,
    google:
      env.TOLLGATE_GOOGLE_CLIENT_ID && env.TOLLGATE_GOOGLE_CLIENT_SECRET
        ? {
            clientId: env.TOLLGATE_GOOGLE_CLIENT_ID,
            clientSecret: env.TOLLGATE_GOOGLE_CLIENT_SECRET,
            issuer: env.TOLLGATE_GOOGLE_ISSUER,
          }
        : undefined,
    apple: env.TOLLGATE_APPLE_CLIENT_ID
      ? {
          clientId: env.TOLLGATE_APPLE_CLIENT_ID,
          issuer: env.TOLLGATE_APPLE_ISSUER,
          clientSecret: env.TOLLGATE_APPLE_CLIENT_SECRET,
          signingKey:
            env.TOLLGATE_APPLE_TEAM_ID && env.TOLLGATE_APPLE_KEY_ID && env.TOLLGATE_APPLE_PRIVATE_KEY
              ? {
                  teamId: env.TOLLGATE_APPLE_TEAM_ID,
                  keyId: env.TOLLGATE_APPLE_KEY_ID,
                  privateKey: env.TOLLGATE_APPLE_PRIVATE_KEY,
                }
              : undefined,
        }
      : undefined,
  };
}

/** True when neither a database nor a Redis server is configured: everything runs in this process. */
export function isEmbedded(config: TollgateConfig): boolean {
  return config.database.driver === 'pglite' && config.counters.driver === 'memory';
}
