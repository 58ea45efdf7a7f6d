import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';
import { openRedisClient, type RedisConfig } from '../storage/open-redis-client.js';
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

export async function openRedisCounterStore(
  config: RedisConfig,
  options: RedisCounterStoreOptions,
): Promise<CounterStore> {
  const { client, location, close } = await openRedisClient(config, {
    logger: options.logger,
    purpose: 'counters',
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.connectWaitMs === undefined ? {} : { connectWaitMs: options.connectWaitMs }),
  });
  client.defineCommand('tollgateIncrement', { numberOfKeys: 1, lua: incrementScript });

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
    close,
  };
}
