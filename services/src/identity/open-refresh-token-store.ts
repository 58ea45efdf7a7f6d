import type { CounterConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import type { Database } from '../storage/database.js';
import { createPostgresRefreshTokenStore } from './postgres-refresh-token-store.js';
import { openRedisRefreshTokenStore } from './redis-refresh-token-store.js';
import type { RefreshTokenStore } from './refresh-token-store.js';

/**
 * Opens the refresh-token store: Redis or Redis Cluster when `REDIS_URL` or `REDIS_CLUSTER_NODES`
 * is set (the same settings as the counter store), else the `refresh_tokens` table of `database`.
 */
export async function openRefreshTokenStore(
  redis: CounterConfig,
  options: { database: Database; logger: Logger; keyPrefix?: string; connectWaitMs?: number },
): Promise<RefreshTokenStore> {
  if (redis.driver === 'memory') return createPostgresRefreshTokenStore(options.database);
  return openRedisRefreshTokenStore(redis, {
    logger: options.logger,
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.connectWaitMs === undefined ? {} : { connectWaitMs: options.connectWaitMs }),
  });
}
