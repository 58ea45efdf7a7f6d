import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { CounterConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { withTimeout } from '../timing/with-timeout.js';

/** The Redis settings of the configuration: `REDIS_URL` or `REDIS_CLUSTER_NODES`. */
export type RedisConfig = Extract<CounterConfig, { driver: 'redis' | 'redis-cluster' }>;

export interface RedisClientOptions {
  logger: Logger;
  /** What this connection is for, in its log lines (`counters`, `refresh tokens`). */
  purpose: string;
  /** Put before every key, so several installations (or test runs) can share one Redis. */
  keyPrefix?: string;
  /** How long start-up waits for the first connection before going on without it. */
  connectWaitMs?: number;
}

export interface OpenedRedisClient {
  client: Redis | Cluster;
  /** Where it connects, safe to print (no password). */
  location: string;
  /** QUIT, or a hard disconnect when Redis does not answer within 2 seconds. */
  close(): Promise<void>;
}

/** The URL without its password, for logs and status output. */
export function describeRedisUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
}

// Commands fail at once while disconnected instead of queueing: a request must not hang on a Redis
// that is down (each caller decides what happens then). The client keeps reconnecting in the
// background, so readiness comes back by itself when Redis does.
const clientOptions: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
};

function waitForReady(client: Redis | Cluster, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, ms);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}

/**
 * Connects to the configured Redis or Redis Cluster with Tollgate's client options (decision 0008),
 * logging each distinct connection error once and the recovery. Does not fail when Redis is down:
 * after `connectWaitMs` it goes on and the client keeps retrying in the background.
 */
export async function openRedisClient(config: RedisConfig, options: RedisClientOptions): Promise<OpenedRedisClient> {
  const prefix = options.keyPrefix ? { keyPrefix: options.keyPrefix } : {};
  const client =
    config.driver === 'redis'
      ? new Redis(config.url, { ...clientOptions, ...prefix })
      : new Cluster(config.nodes, {
          enableOfflineQueue: false,
          ...prefix,
          redisOptions: clientOptions,
          clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
        });
  const location =
    config.driver === 'redis' ? describeRedisUrl(config.url) : config.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const context = { location, purpose: options.purpose };

  let lastError: string | undefined;
  client.on('error', (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt; log each distinct one once.
    if (error.message !== lastError) options.logger.warn({ err: error, ...context }, 'Redis connection error');
    lastError = error.message;
  });
  client.on('ready', () => {
    if (lastError !== undefined) options.logger.info(context, 'Redis connection restored');
    lastError = undefined;
  });

  const ready = await waitForReady(client, options.connectWaitMs ?? 5_000);
  if (!ready) options.logger.warn(context, 'Redis is not answering; going on and retrying in the background');

  return {
    client,
    location,
    async close() {
      try {
        await withTimeout(client.quit(), 2_000, 'Redis QUIT');
      } catch {
        client.disconnect();
      }
    },
  };
}
