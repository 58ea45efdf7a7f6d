import type { CounterConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import type { CounterStore } from './counter-store.js';
import { createMemoryCounterStore } from './memory-counter-store.js';
import { openRedisCounterStore } from './redis-counter-store.js';

/** Opens the configured counter store: Redis, Redis Cluster, or process memory. */
export async function openCounterStore(
  config: CounterConfig,
  options: { logger: Logger; keyPrefix?: string },
): Promise<CounterStore> {
  if (config.driver === 'memory') return createMemoryCounterStore();
  return openRedisCounterStore(config, options);
}
