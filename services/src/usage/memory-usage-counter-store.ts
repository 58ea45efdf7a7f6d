import { addCounts, cellKey, emptyCounts, type UsageCell, type UsageCounterStore } from './usage-counter-store.js';

/** How long a delivery id is remembered: far longer than a gateway retries one delivery. */
const deliveryMemoryMs = 3_600_000;

/**
 * The embedded default: the same open batch, sealed batches and delivery ids as the Redis store, in
 * this process's memory. Node runs one call at a time, so each operation is atomic as the Redis
 * scripts are. What is counted here is lost when the process stops without a flush.
 */
export function createMemoryUsageCounterStore(options: { now?: () => number } = {}): UsageCounterStore {
  const now = options.now ?? Date.now;
  let open = new Map<string, UsageCell>();
  const sealed = new Map<string, UsageCell[]>();
  const deliveries = new Map<string, number>();

  return {
    driver: 'memory',
    async add(cells, deliveryId) {
      const at = now();
      for (const [id, expiresAt] of deliveries) if (expiresAt <= at) deliveries.delete(id);
      if (deliveries.has(deliveryId)) return;
      deliveries.set(deliveryId, at + deliveryMemoryMs);
      for (const cell of cells) {
        const key = cellKey(cell);
        let held = open.get(key);
        if (!held) {
          held = { ...cell, counts: emptyCounts() };
          open.set(key, held);
        }
        addCounts(held.counts, cell.counts);
      }
    },
    async seal(batchId) {
      if (open.size === 0) return false;
      sealed.set(batchId, [...open.values()]);
      open = new Map();
      return true;
    },
    async sealedBatches() {
      return [...sealed.keys()];
    },
    async readSealed(batchId) {
      return (sealed.get(batchId) ?? []).map((cell) => ({ ...cell, counts: { ...cell.counts } }));
    },
    async removeSealed(batchId) {
      sealed.delete(batchId);
    },
    async close() {},
  };
}
