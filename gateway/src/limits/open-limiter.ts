import { type CounterConfig, defaultRedisPrefix, type Logger, openRedisClient } from '@tollgate/services';
import { createLeasingLimiter } from './leasing-limiter.js';
import type { Limiter } from './limiter.js';
import { createMemoryLimiter } from './memory-limiter.js';

/**
 * The limiter the configuration asks for: the leasing limiter (blocks of units reserved from Redis,
 * see leasing-limiter.ts) on REDIS_URL / REDIS_CLUSTER_NODES
 * (its own connection, keys prefixed with `keyPrefix`, TOLLGATE_REDIS_PREFIX, `tollgate:` by
 * default), else the in-process limiter.
 */
export async function openLimiter(
  config: CounterConfig,
  options: { logger: Logger; keyPrefix?: string },
): Promise<Limiter & { driver: 'redis' | 'memory' }> {
  if (config.driver === 'memory') return Object.assign(createMemoryLimiter(), { driver: 'memory' as const });
  const opened = await openRedisClient(config, {
    logger: options.logger,
    purpose: 'rate limits',
    keyPrefix: options.keyPrefix ?? defaultRedisPrefix,
  });
  const limiter = createLeasingLimiter(opened.client);
  return {
    driver: 'redis',
    check: (request) => limiter.check(request),
    reconcile: (request, calls, overage) => limiter.reconcile?.(request, calls, overage) ?? Promise.resolve(),
    close: async () => {
      await limiter.close();
      await opened.close();
    },
  };
}
