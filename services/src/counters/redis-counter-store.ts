import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { CounterConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { withTimeout } from '../timing/with-timeout.js';
import type { CounterStore } from './counter-store.js';

/** Increment and, only when the key is new, set its expiry: one atomic round trip. */
const incrementScript = `
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return total`;

type RedisClient = (Redis | Cluster) & {
  tollgateIncrement(key: string, amount: number, ttlMs: number): Promise<number>;
};

export interface RedisCounterStoreOptions {
  logger: Logger;
  /** Put before every key, so several installations (or test runs) can share one Redis. */
  keyPrefix?: string;
  /** How long a health check waits for PONG, in milliseconds. */
  pingTimeoutMs?: number;
  /** How long start-up waits for the first connection before going on without it. */
  connectWaitMs?: number;
}

/** The URL without its password, for logs and status output. */
export function describeRedisUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
}

// Commands fail at once while disconnected instead of queueing: a request must not hang on a Redis
// that is down (the gateway's failure policy decides what happens then). The client keeps
// reconnecting in the background, so readiness comes back by itself when Redis does.
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

export async function openRedisCounterStore(
  config: Extract<CounterConfig, { driver: 'redis' | 'redis-cluster' }>,
  options: RedisCounterStoreOptions,
): Promise<CounterStore> {
  const client =
    config.driver === 'redis'
      ? new Redis(config.url, { ...clientOptions, ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}) })
      : new Cluster(config.nodes, {
          enableOfflineQueue: false,
          ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
          redisOptions: clientOptions,
          clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
        });
  const location =
    config.driver === 'redis' ? describeRedisUrl(config.url) : config.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  client.defineCommand('tollgateIncrement', { numberOfKeys: 1, lua: incrementScript });

  let lastError: string | undefined;
  client.on('error', (error: Error) => {
    // ioredis repeats the same error on every reconnect attempt; log each distinct one once.
    if (error.message !== lastError) options.logger.warn({ err: error, location }, 'Redis connection error');
    lastError = error.message;
  });
  client.on('ready', () => {
    if (lastError !== undefined) options.logger.info({ location }, 'Redis connection restored');
    lastError = undefined;
  });

  const ready = await waitForReady(client, options.connectWaitMs ?? 5_000);
  if (!ready) options.logger.warn({ location }, 'Redis is not answering; going on and retrying in the background');

  const pingTimeoutMs = options.pingTimeoutMs ?? 1_000;
  const redis = client as RedisClient;
  return {
    driver: config.driver,
    location,
    async increment(key, amount, ttlMs) {
      return Number(await redis.tollgateIncrement(key, amount, ttlMs));
    },
    async get(key) {
      return Number((await client.get(key)) ?? 0);
    },
    async remainingMs(key) {
      const ttl = await client.pttl(key);
      return Math.max(ttl, 0);
    },
    async delete(key) {
      await client.del(key);
    },
    async ping() {
      await withTimeout(client.ping(), pingTimeoutMs, 'Redis PING');
    },
    async close() {
      try {
        await withTimeout(client.quit(), 2_000, 'Redis QUIT');
      } catch {
        client.disconnect();
      }
    },
  };
}
