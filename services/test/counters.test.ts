import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterStore } from '../src/counters/counter-store.js';
import { createMemoryCounterStore } from '../src/counters/memory-counter-store.js';
import { expectedCounterDriver, openTestCounters, uniqueKey } from './support/backends.js';

describe(`counter store (${expectedCounterDriver})`, () => {
  let counters: CounterStore;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const opened = await openTestCounters();
    counters = opened.value;
    dispose = opened.dispose;
  });
  afterAll(() => dispose());

  it('is the driver the environment asks for', () => {
    expect(counters.driver).toBe(expectedCounterDriver);
  });

  it('answers a health check', async () => {
    await expect(counters.ping()).resolves.toBeUndefined();
  });

  it('adds up increments per key and reads them back', async () => {
    const key = uniqueKey('sum');
    const other = uniqueKey('other');
    expect(await counters.increment(key, 1, 60_000)).toBe(1);
    expect(await counters.increment(key, 41, 60_000)).toBe(42);
    expect(await counters.increment(other, 5, 60_000)).toBe(5);
    expect(await counters.get(key)).toBe(42);
    expect(await counters.get(uniqueKey('absent'))).toBe(0);
  });

  it('loses no increment under concurrency', async () => {
    const key = uniqueKey('concurrent');
    const totals = await Promise.all(Array.from({ length: 300 }, () => counters.increment(key, 1, 60_000)));
    expect(await counters.get(key)).toBe(300);
    // Every caller saw a distinct running total: the increments were atomic.
    expect(new Set(totals).size).toBe(300);
  });

  it('reports the time a counter has left, and forgets one on delete', async () => {
    const key = uniqueKey('remaining');
    expect(await counters.remainingMs(key)).toBe(0);
    await counters.increment(key, 3, 60_000);
    const left = await counters.remainingMs(key);
    expect(left).toBeGreaterThan(55_000);
    expect(left).toBeLessThanOrEqual(60_000);
    await counters.delete(key);
    expect(await counters.get(key)).toBe(0);
    expect(await counters.remainingMs(key)).toBe(0);
  });

  it('expires a counter after its window; later increments do not extend it', async () => {
    const key = uniqueKey('window');
    await counters.increment(key, 1, 300);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await counters.increment(key, 1, 300);
    expect(await counters.get(key)).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await counters.get(key)).toBe(0);
    expect(await counters.increment(key, 7, 300)).toBe(7);
  });
});

describe('memory counter store', () => {
  it('forgets everything when closed', async () => {
    let time = 0;
    const store = createMemoryCounterStore(() => time);
    await store.increment('k', 3, 10);
    time = 9;
    expect(await store.get('k')).toBe(3);
    time = 10;
    expect(await store.get('k')).toBe(0);
    await store.increment('k', 1, 10);
    await store.close();
    expect(await store.get('k')).toBe(0);
  });
});
