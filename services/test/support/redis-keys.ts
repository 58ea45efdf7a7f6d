import { Redis } from 'ioredis';
import { testRedisUrl } from './backends.js';

export interface RedisKeyDump {
  /** Without the prefix. */
  key: string;
  /** A string's value, a set's members (sorted), or a hash's fields. */
  value: string | string[] | Record<string, string>;
  /** Milliseconds left; -1 without an expiry. */
  ttlMs: number;
}

/**
 * Every key under `keyPrefix` on TEST_REDIS_URL (those matching `match` after the prefix, a Redis
 * glob), with its value: what a dump of that Redis shows.
 */
export async function dumpRedisKeys(
  keyPrefix: string,
  options: { match?: string; url?: string | undefined } = {},
): Promise<RedisKeyDump[]> {
  const url = options.url ?? testRedisUrl;
  if (!url) throw new Error('dumpRedisKeys needs TEST_REDIS_URL');
  if (!keyPrefix) throw new Error('dumpRedisKeys needs a key prefix, not to read the whole server');
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}${options.match ?? '*'}`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    const dumps: RedisKeyDump[] = [];
    for (const key of keys.sort()) {
      const type = await redis.type(key);
      const value =
        type === 'set'
          ? (await redis.smembers(key)).sort()
          : type === 'hash'
            ? await redis.hgetall(key)
            : ((await redis.get(key)) ?? '');
      dumps.push({ key: key.slice(keyPrefix.length), value, ttlMs: await redis.pttl(key) });
    }
    return dumps;
  } finally {
    redis.disconnect();
  }
}
