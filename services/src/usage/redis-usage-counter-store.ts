import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../logging/logger.js';
import { openRedisClient, type RedisConfig } from '../storage/open-redis-client.js';
import { cellsFromCounters, counterField, type UsageCounterStore, usageCountNames } from './usage-counter-store.js';

/**
 * KEYS: the open batch (a hash), the delivery's marker. ARGV: marker lifetime (ms), then pairs of
 * counter name and amount. A delivery seen before changes nothing; counters named `...|latencyUsMax`
 * keep the larger value, all others add up (HINCRBY).
 */
const addScript = `
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do
  local field = ARGV[i]
  local amount = tonumber(ARGV[i + 1])
  if string.sub(field, -13) == '|latencyUsMax' then
    local current = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if amount > current then redis.call('HSET', KEYS[1], field, amount) end
  else
    redis.call('HINCRBY', KEYS[1], field, amount)
  end
end
return 1`;

/** KEYS: the open batch, the sealed batch, the index of sealed batches. ARGV: batch id, now (ms). */
const sealScript = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1`;

/** KEYS: the sealed batch, the index of sealed batches. ARGV: batch id. */
const removeScript = `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`;

type UsageClient = (Redis | Cluster) & {
  tollgateUsageAdd(open: string, marker: string, ...args: (string | number)[]): Promise<number>;
  tollgateUsageSeal(open: string, sealed: string, index: string, batchId: string, now: number): Promise<number>;
  tollgateUsageRemove(sealed: string, index: string, batchId: string): Promise<number>;
};

const deliveryMemoryMs = 3_600_000;
/** Counter pairs per script call: keeps one call's arguments and run time small. */
const pairsPerCall = 2_000;

export interface RedisUsageCounterStoreOptions {
  /**
   * The hash tag every key shares, so the seal script can move a batch on Redis Cluster (all usage
   * keys live in one slot: one small write per gateway per second and one flush every few seconds).
   * Default `tollgate-usage`; `openRedisUsageCounterStore` with a key prefix makes it `<prefix>usage`.
   */
  tag?: string;
}

/**
 * The hash tag for a key prefix (`TOLLGATE_REDIS_PREFIX`). The prefix itself goes before each key,
 * outside the braces, so it does not choose the slot; putting it in the tag too gives each
 * installation sharing a Redis Cluster a slot of its own instead of one hot slot for all.
 */
export function usageHashTagFor(keyPrefix: string): string {
  return `${keyPrefix}usage`;
}

/** The store on an open ioredis client (Redis or Redis Cluster); the caller closes the client. */
export function createRedisUsageCounterStore(
  client: Redis | Cluster,
  driver: 'redis' | 'redis-cluster',
  options: RedisUsageCounterStoreOptions = {},
): UsageCounterStore {
  const tag = `{${options.tag ?? 'tollgate-usage'}}`;
  const openKey = `usage:${tag}:open`;
  const indexKey = `usage:${tag}:sealed`;
  const sealedKey = (batchId: string) => `usage:${tag}:sealed:${batchId}`;
  const markerKey = (deliveryId: string) => `usage:${tag}:delivery:${deliveryId}`;
  client.defineCommand('tollgateUsageAdd', { numberOfKeys: 2, lua: addScript });
  client.defineCommand('tollgateUsageSeal', { numberOfKeys: 3, lua: sealScript });
  client.defineCommand('tollgateUsageRemove', { numberOfKeys: 2, lua: removeScript });
  const redis = client as UsageClient;

  return {
    driver,
    async add(cells, deliveryId) {
      const pairs: (string | number)[] = [];
      for (const cell of cells) {
        for (const name of usageCountNames) {
          const amount = cell.counts[name];
          // Zero adds nothing (and a zero maximum changes nothing): leave it out.
          if (amount !== 0) pairs.push(counterField(cell, name), amount);
        }
      }
      // A large delivery goes in parts, each with an id of its own so that each is counted once.
      for (let start = 0, part = 0; start < pairs.length; start += pairsPerCall * 2, part++) {
        const slice = pairs.slice(start, start + pairsPerCall * 2);
        const id = pairs.length > pairsPerCall * 2 ? `${deliveryId}.${part}` : deliveryId;
        await redis.tollgateUsageAdd(openKey, markerKey(id), deliveryMemoryMs, ...slice);
      }
    },
    async seal(batchId) {
      return (await redis.tollgateUsageSeal(openKey, sealedKey(batchId), indexKey, batchId, Date.now())) === 1;
    },
    async sealedBatches() {
      return client.zrange(indexKey, 0, -1);
    },
    async readSealed(batchId) {
      const hash = await client.hgetall(sealedKey(batchId));
      const { cells } = cellsFromCounters(Object.entries(hash).map(([field, value]) => [field, Number(value)]));
      return cells;
    },
    async removeSealed(batchId) {
      await redis.tollgateUsageRemove(sealedKey(batchId), indexKey, batchId);
    },
    async close() {},
  };
}

/** Opens a Redis connection of its own for usage counting and the store on it. */
export async function openRedisUsageCounterStore(
  config: RedisConfig,
  options: { logger: Logger; keyPrefix?: string; connectWaitMs?: number } & RedisUsageCounterStoreOptions,
): Promise<UsageCounterStore> {
  const opened = await openRedisClient(config, {
    logger: options.logger,
    purpose: 'usage counters',
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.connectWaitMs === undefined ? {} : { connectWaitMs: options.connectWaitMs }),
  });
  const tag = options.tag ?? (options.keyPrefix ? usageHashTagFor(options.keyPrefix) : undefined);
  const store = createRedisUsageCounterStore(opened.client, config.driver, tag === undefined ? {} : { tag });
  return { ...store, close: opened.close };
}
