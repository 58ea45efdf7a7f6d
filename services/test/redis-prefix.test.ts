import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { configChannelFor, openConfigBus } from '../src/apis/config-bus.js';
import { loadConfig } from '../src/config/config.js';
import { openCounterStore } from '../src/counters/open-counter-store.js';
import { type KeyEvent, keyEventsChannelFor, openKeyEvents } from '../src/keys/key-events.js';
import { openUsageCounterStore } from '../src/usage/open-usage-counter-store.js';
import { emptyCounts, type UsageCell } from '../src/usage/usage-counter-store.js';
import { silentLogger, testRedisUrl, uniqueKey } from './support/backends.js';

/**
 * TOLLGATE_REDIS_PREFIX: two installations on one Redis, each with its own prefix, share no key and
 * no channel. Above all, one's usage flusher never seals (and so never writes into its own database)
 * the other's usage.
 */
describe.runIf(testRedisUrl)('two installations on one Redis under different TOLLGATE_REDIS_PREFIX', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.allSettled(closers.splice(0).map((close) => close()));
  });

  /** The configuration `tollgate start` would read for an installation with this prefix. */
  function installation() {
    const prefix = `${uniqueKey('prefix')}:`;
    return { prefix, config: loadConfig({ REDIS_URL: testRedisUrl, TOLLGATE_REDIS_PREFIX: prefix }) };
  }

  /** The keys under a prefix, without it. */
  async function keysUnder(prefix: string): Promise<string[]> {
    const redis = new Redis(testRedisUrl ?? '');
    try {
      return (await redis.keys(`${prefix}*`)).map((key) => key.slice(prefix.length)).sort();
    } finally {
      redis.disconnect();
    }
  }

  function cell(teamId: string): UsageCell {
    return {
      minute: Date.UTC(2025, 0, 1, 12, 0),
      teamId,
      keyId: 'key',
      apiId: 'api',
      counts: { ...emptyCounts(), calls: 3 },
    };
  }

  it("keeps each installation's usage batches to itself, under a hash tag of its own", async () => {
    const a = installation();
    const b = installation();
    const storeA = await openUsageCounterStore(a.config.counters, {
      logger: silentLogger(),
      keyPrefix: a.config.redisPrefix,
    });
    const storeB = await openUsageCounterStore(b.config.counters, {
      logger: silentLogger(),
      keyPrefix: b.config.redisPrefix,
    });
    closers.push(storeA.close, storeB.close);

    await storeA.add([cell('team-a')], 'delivery-1');
    // B's flusher finds nothing to seal and no sealed batch: A's calls stay A's.
    expect(await storeB.seal('batch-b')).toBe(false);
    expect(await storeB.sealedBatches()).toEqual([]);
    expect(await storeA.seal('batch-a')).toBe(true);
    expect(await storeA.sealedBatches()).toEqual(['batch-a']);
    expect((await storeA.readSealed('batch-a')).map((c) => [c.teamId, c.counts.calls])).toEqual([['team-a', 3]]);

    const keys = await keysUnder(a.prefix);
    const tag = `{${a.prefix}usage}`;
    expect(keys).toEqual([`usage:${tag}:delivery:delivery-1`, `usage:${tag}:sealed`, `usage:${tag}:sealed:batch-a`]);
    expect(await keysUnder(b.prefix)).toEqual([]);
  });

  it('counts limits apart', async () => {
    const a = installation();
    const b = installation();
    const countersA = await openCounterStore(a.config.counters, { logger: silentLogger(), keyPrefix: a.prefix });
    const countersB = await openCounterStore(b.config.counters, { logger: silentLogger(), keyPrefix: b.prefix });
    closers.push(countersA.close, countersB.close);
    expect(await countersA.increment('login:ip:127.0.0.1', 1, 60_000)).toBe(1);
    expect(await countersA.increment('login:ip:127.0.0.1', 1, 60_000)).toBe(2);
    expect(await countersB.increment('login:ip:127.0.0.1', 1, 60_000)).toBe(1);
  });

  it('hears only its own key events and config versions', async () => {
    const a = installation();
    const b = installation();
    const logger = silentLogger();
    const [eventsA, eventsB, busA, busB] = await Promise.all([
      openKeyEvents(a.config.counters, { logger, channel: keyEventsChannelFor(a.prefix) }),
      openKeyEvents(b.config.counters, { logger, channel: keyEventsChannelFor(b.prefix) }),
      openConfigBus(a.config.counters, { logger, channel: configChannelFor(a.prefix) }),
      openConfigBus(b.config.counters, { logger, channel: configChannelFor(b.prefix) }),
    ]);
    closers.push(eventsA.close, eventsB.close, busA.close, busB.close);
    const heardA: KeyEvent[] = [];
    const heardB: KeyEvent[] = [];
    eventsA.subscribe((event) => heardA.push(event));
    eventsB.subscribe((event) => heardB.push(event));
    const versionsA: number[] = [];
    const versionsB: number[] = [];
    busA.subscribe((version) => versionsA.push(version));
    busB.subscribe((version) => versionsB.push(version));

    await eventsB.publishInvalidation('key-of-b');
    await busB.publish(7);
    await eventsA.publishInvalidation('key-of-a');
    await busA.publish(3);
    await expect.poll(() => heardA.length + versionsA.length).toBe(2);
    await expect.poll(() => heardB.length + versionsB.length).toBe(2);
    expect(heardA).toEqual([{ type: 'invalidate', lookupId: 'key-of-a' }]);
    expect(versionsA).toEqual([3]);
    expect(heardB).toEqual([{ type: 'invalidate', lookupId: 'key-of-b' }]);
    expect(versionsB).toEqual([7]);
  });
});
