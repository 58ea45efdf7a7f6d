import type { CounterConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { createMemoryUsageCounterStore } from './memory-usage-counter-store.js';
import { openRedisUsageCounterStore } from './redis-usage-counter-store.js';
import type { UsageCounterStore } from './usage-counter-store.js';

/**
 * The usage counter store for this configuration: Redis (or Redis Cluster) when configured, else
 * process memory, which only works when the gateway and the flusher run in the same process.
 */
export async function openUsageCounterStore(
  config: CounterConfig,
  options: { logger: Logger; keyPrefix?: string },
): Promise<UsageCounterStore> {
  if (config.driver === 'memory') return createMemoryUsageCounterStore();
  return openRedisUsageCounterStore(config, options);
}
