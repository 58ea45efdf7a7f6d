import type { CounterStore } from './counter-store.js';

interface Entry {
  value: number;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** The embedded counter store: one process, no server. Expired entries are swept once a minute. */
export function createMemoryCounterStore(now: () => number = Date.now): CounterStore {
  const entries = new Map<string, Entry>();
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  const sweeper = setInterval(() => {
    const time = now();
    for (const [key, entry] of entries) if (entry.expiresAt <= time) entries.delete(key);
  }, 60_000);
  sweeper.unref();

  return {
    driver: 'memory',
    location: 'in-process',
    async increment(key, amount, ttlMs) {
      const entry = live(key);
      if (entry) {
        entry.value += amount;
        return entry.value;
      }
      entries.set(key, { value: amount, expiresAt: now() + ttlMs });
      return amount;
    },
    async get(key) {
      return live(key)?.value ?? 0;
    },
    async remainingMs(key) {
      const entry = live(key);
      return entry ? entry.expiresAt - now() : 0;
    },
    async delete(key) {
      entries.delete(key);
    },
    async ping() {},
    async close() {
      clearInterval(sweeper);
      entries.clear();
    },
  };
}
