export type CounterDriver = 'redis' | 'redis-cluster' | 'memory';

/**
 * Counters the gateway limits and meters with. Redis when configured (shared by every gateway),
 * process memory otherwise. The gateway's one-round-trip limit script builds on this interface.
 */
export interface CounterStore {
  readonly driver: CounterDriver;
  /** Where the counters live, safe to print (no password). */
  readonly location: string;
  /**
   * Adds `amount` to `key` and returns the new total. The counter expires `ttlMs` after the
   * increment that created it; later increments do not extend it (a fixed window).
   */
  increment(key: string, amount: number, ttlMs: number): Promise<number>;
  /** The current total, 0 when absent or expired. */
  get(key: string): Promise<number>;
  /** Milliseconds until the counter expires; 0 when absent. */
  remainingMs(key: string): Promise<number>;
  /** Forgets a counter. */
  delete(key: string): Promise<void>;
  /** Rejects, quickly, when the store cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
