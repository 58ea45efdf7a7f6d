import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';

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
  /**
   * Base URL people reach the API at, used in links sent by email (verification, reset,
   * invitations). Unset: the API's own listening URL.
   */
  publicUrl: string | undefined;
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
    TOLLGATE_LOG_LEVEL: z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` }).default('info'),
    TOLLGATE_BODY_LIMIT: byteSize.default(1024 * 1024),
    TOLLGATE_SHUTDOWN_TIMEOUT: duration.default(10_000),
    TOLLGATE_TRUST_PROXY: boolean.default(false),
    TOLLGATE_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    SMTP_URL: urlWithProtocols(['smtp:', 'smtps:'], 'SMTP').optional(),
    TOLLGATE_MAIL_FROM: z.string().min(3).default('Tollgate <no-reply@localhost>'),
    TOLLGATE_MAIL_DIR: z.string().min(1).default('.tollgate/mail'),
    TOLLGATE_PUBLIC_URL: urlWithProtocols(['http:', 'https:'], 'http(s)').optional(),
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
  })
  .superRefine((env, ctx) => {
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
    logLevel: env_.TOLLGATE_LOG_LEVEL,
    bodyLimitBytes: env_.TOLLGATE_BODY_LIMIT,
    shutdownTimeoutMs: env_.TOLLGATE_SHUTDOWN_TIMEOUT,
    trustProxy: env_.TOLLGATE_TRUST_PROXY,
    metricsToken: env_.TOLLGATE_METRICS_TOKEN,
    masterKey: env_.TOLLGATE_MASTER_KEY,
    previousMasterKeys: env_.TOLLGATE_MASTER_KEY_PREVIOUS ?? [],
    dataDir: env_.TOLLGATE_DATA_DIR,
    operatorEmail: env_.TOLLGATE_OPERATOR_EMAIL,
    mail: { smtpUrl: env_.SMTP_URL, from: env_.TOLLGATE_MAIL_FROM, dir: env_.TOLLGATE_MAIL_DIR },
    publicUrl: env_.TOLLGATE_PUBLIC_URL?.replace(/\/+$/, ''),
  };
}

/** True when neither a database nor a Redis server is configured: everything runs in this process. */
export function isEmbedded(config: TollgateConfig): boolean {
  return config.database.driver === 'pglite' && config.counters.driver === 'memory';
}
