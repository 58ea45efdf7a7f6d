import {
  checkWindowSpec,
  type LimitDecision,
  type Limiter,
  type LimitRequest,
  type QuotaState,
  type WindowState,
} from './limiter.js';

interface Ring {
  /** Bucket index held by each slot (slot = index mod size), -1 when empty. */
  indexes: number[];
  counts: number[];
  expiresAt: number;
}

interface Counter {
  value: number;
  expiresAt: number;
}

/**
 * The limiter of the embedded default: the same bucketed sliding windows and quotas as the Redis
 * script (redis-limiter.ts), in this process's memory. Node runs one check at a time, so a check
 * and its counting are atomic here as the script is in Redis.
 */
export function createMemoryLimiter(options: { now?: () => number; sweepMs?: number } = {}): Limiter & {
  /** Keys held, for tests of the sweep. */
  size(): number;
} {
  const now = options.now ?? Date.now;
  const rings = new Map<string, Ring>();
  const counters = new Map<string, Counter>();
  const sweep = setInterval(() => {
    const at = now();
    for (const [key, ring] of rings) if (ring.expiresAt <= at) rings.delete(key);
    for (const [key, counter] of counters) if (counter.expiresAt <= at) counters.delete(key);
  }, options.sweepMs ?? 60_000);
  sweep.unref();

  function check(request: LimitRequest): LimitDecision {
    const at = now();
    const cost = request.cost ?? 1;
    const windows: WindowState[] = [];
    const sums: number[] = [];
    let refused: { kind: 'window' | 'quota'; id: string; retryAfterMs: number } | undefined;

    for (const window of request.windows) {
      checkWindowSpec(window);
      const bucketMs = window.windowMs / window.buckets;
      const size = window.buckets + 1;
      const current = Math.floor(at / bucketMs);
      const ring = rings.get(`${request.scope}:${window.key}`);
      const counted = new Map<number, number>();
      let sum = 0;
      if (ring && ring.expiresAt > at) {
        for (let slot = 0; slot < size; slot++) {
          const index = ring.indexes[slot] ?? -1;
          if (index >= 0 && index > current - size && index <= current) {
            const count = ring.counts[slot] ?? 0;
            counted.set(index, count);
            sum += count;
          }
        }
      }
      sums.push(sum);
      const oldest = [...counted.keys()].sort((a, b) => a - b)[0];
      const resetMs = oldest === undefined ? 0 : (oldest + size) * bucketMs - at;
      windows.push({
        id: window.id,
        limit: window.limit,
        windowMs: window.windowMs,
        remaining: Math.max(0, window.limit - sum),
        resetMs,
      });
      if (!refused && sum + cost > window.limit) {
        // Capacity frees as the oldest buckets leave: wait until enough of them have.
        const need = sum + cost - window.limit;
        let freed = 0;
        let retryAfterMs = window.windowMs;
        for (let index = current - size + 1; index <= current; index++) {
          freed += counted.get(index) ?? 0;
          if (freed >= need && counted.has(index)) {
            retryAfterMs = (index + size) * bucketMs - at;
            break;
          }
        }
        refused = { kind: 'window', id: window.id, retryAfterMs };
      }
    }

    let quota: QuotaState | undefined;
    const quotaSpec = request.quota;
    if (quotaSpec) {
      const counter = counters.get(`${request.scope}:${quotaSpec.key}`);
      const used = counter && counter.expiresAt > at ? counter.value : 0;
      const resetMs = Math.max(0, quotaSpec.periodEnd.getTime() - at);
      quota = {
        id: quotaSpec.id,
        limit: quotaSpec.limit,
        used,
        remaining: Math.max(0, quotaSpec.limit - used),
        overage: false,
        resetMs,
      };
      if (!refused && !quotaSpec.overage && used + cost > quotaSpec.limit) {
        refused = { kind: 'quota', id: quotaSpec.id, retryAfterMs: resetMs };
      }
    }

    if (refused) {
      return {
        allowed: false,
        refusedBy: { kind: refused.kind, id: refused.id },
        retryAfterMs: refused.retryAfterMs,
        windows,
        ...(quota ? { quota } : {}),
      };
    }

    request.windows.forEach((window, position) => {
      const bucketMs = window.windowMs / window.buckets;
      const size = window.buckets + 1;
      const current = Math.floor(at / bucketMs);
      const key = `${request.scope}:${window.key}`;
      let ring = rings.get(key);
      if (!ring || ring.expiresAt <= at) {
        ring = { indexes: new Array(size).fill(-1), counts: new Array(size).fill(0), expiresAt: 0 };
        rings.set(key, ring);
      }
      const slot = current % size;
      if (ring.indexes[slot] !== current) {
        ring.indexes[slot] = current;
        ring.counts[slot] = 0;
      }
      ring.counts[slot] = (ring.counts[slot] ?? 0) + cost;
      ring.expiresAt = at + window.windowMs + bucketMs;
      const state = windows[position] as WindowState;
      state.remaining = Math.max(0, window.limit - ((sums[position] ?? 0) + cost));
      if (state.resetMs === 0) state.resetMs = (current + size) * bucketMs - at;
    });
    if (quotaSpec && quota) {
      const key = `${request.scope}:${quotaSpec.key}`;
      const used = quota.used + cost;
      counters.set(key, { value: used, expiresAt: quotaSpec.periodEnd.getTime() + 86_400_000 });
      quota.overage = used > quotaSpec.limit;
      quota.used = used;
      quota.remaining = Math.max(0, quotaSpec.limit - used);
    }
    return { allowed: true, windows, ...(quota ? { quota } : {}) };
  }

  return {
    check: (request) => check(request),
    size: () => rings.size + counters.size,
    close: async () => {
      clearInterval(sweep);
      rings.clear();
      counters.clear();
    },
  };
}
