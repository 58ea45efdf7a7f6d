import {
  createMemoryUsageCounterStore,
  type Database,
  flushUsage,
  openRedisUsageCounterStore,
  runMigrations,
  type UsageCounterStore,
} from '@tollgate/services';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  openTestDatabase,
  silentLogger,
  testRedisUrl,
  uniqueKey,
} from '@tollgate/services/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createUsageRecorder, type UsageEvent } from '../src/metering/usage-recorder.js';

let database: Database;
let disposeDatabase: () => Promise<void>;
let store: UsageCounterStore;

beforeAll(async () => {
  const opened = await openTestDatabase();
  database = opened.value;
  disposeDatabase = opened.dispose;
  await runMigrations(database);
});
afterAll(async () => {
  await disposeDatabase?.();
});
beforeEach(async () => {
  await database.query('TRUNCATE usage_minute, usage_hour, usage_day, usage_flushes');
  store = testRedisUrl
    ? await openRedisUsageCounterStore(
        { driver: 'redis', url: testRedisUrl },
        { logger: silentLogger(), keyPrefix: `${uniqueKey('metering')}:` },
      )
    : createMemoryUsageCounterStore();
});
afterEach(async () => {
  await store.close();
});

const base = Date.parse('2026-04-01T12:00:00Z');

const call = (overrides: Partial<UsageEvent> = {}): UsageEvent => ({
  teamId: 'team-a',
  keyId: 'key-1',
  apiId: 'api-1',
  at: base,
  status: 200,
  requestBytes: 10,
  responseBytes: 100,
  latencyMs: 1.5,
  overage: false,
  ...overrides,
});

async function minuteRows() {
  const result = await database.query<Record<string, string | Date>>(
    `SELECT period_start, key_id, calls, request_bytes, response_bytes, latency_us_sum, latency_us_max,
            status_2xx, status_3xx, status_4xx, status_5xx, overage_calls
     FROM usage_minute ORDER BY period_start, key_id`,
  );
  return result.rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([name, value]) => [
        name,
        value instanceof Date ? value.toISOString() : name === 'key_id' ? value : Number(value),
      ]),
    ),
  );
}

async function totalCalls(): Promise<number> {
  const result = await database.query<{ n: string | null }>('SELECT sum(calls) AS n FROM usage_day');
  return Number(result.rows[0]?.n ?? 0);
}

describe(`the gateway's usage recorder (${expectedCounterDriver} counters, ${expectedDatabaseDriver})`, () => {
  it('aggregates calls per minute, team, key and API: counts, bytes, latency, status classes, overage', async () => {
    const recorder = createUsageRecorder({ store, logger: silentLogger(), flushIntervalMs: 60_000 });
    recorder.record(call({ status: 200, latencyMs: 2 }));
    recorder.record(call({ at: base + 59_999, status: 304, requestBytes: 5, responseBytes: 0, latencyMs: 0.25 }));
    recorder.record(call({ at: base + 1_000, status: 404, latencyMs: 7.5, overage: true }));
    recorder.record(call({ at: base + 2_000, status: 503, latencyMs: 3 }));
    recorder.record(call({ at: base + 60_000, status: 201 }));
    recorder.record(call({ keyId: 'key-2', status: 500 }));
    await recorder.close();
    await flushUsage({ store, database });

    expect(await minuteRows()).toEqual([
      {
        period_start: '2026-04-01T12:00:00.000Z',
        key_id: 'key-1',
        calls: 4,
        request_bytes: 35,
        response_bytes: 300,
        latency_us_sum: 12_750,
        latency_us_max: 7_500,
        status_2xx: 1,
        status_3xx: 1,
        status_4xx: 1,
        status_5xx: 1,
        overage_calls: 1,
      },
      {
        period_start: '2026-04-01T12:00:00.000Z',
        key_id: 'key-2',
        calls: 1,
        request_bytes: 10,
        response_bytes: 100,
        latency_us_sum: 1_500,
        latency_us_max: 1_500,
        status_2xx: 0,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 1,
        overage_calls: 0,
      },
      {
        period_start: '2026-04-01T12:01:00.000Z',
        key_id: 'key-1',
        calls: 1,
        request_bytes: 10,
        response_bytes: 100,
        latency_us_sum: 1_500,
        latency_us_max: 1_500,
        status_2xx: 1,
        status_3xx: 0,
        status_4xx: 0,
        status_5xx: 0,
        overage_calls: 0,
      },
    ]);
  });

  it('hands counts over on its own about once a second', async () => {
    const recorder = createUsageRecorder({ store, logger: silentLogger(), flushIntervalMs: 50 });
    for (let i = 0; i < 1_000; i++) recorder.record(call({ at: base + i }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await flushUsage({ store, database });
    expect(await totalCalls()).toBe(1_000);
    await recorder.close();
  });

  it('stays exact while flushes and recording interleave', async () => {
    const recorder = createUsageRecorder({ store, logger: silentLogger(), flushIntervalMs: 5 });
    let recorded = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 250; i++) {
        recorder.record(call({ at: base + round * 7_000 + i, keyId: `key-${i % 7}` }));
        recorded++;
      }
      if (round % 3 === 0) await flushUsage({ store, database });
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await recorder.close();
    await flushUsage({ store, database });
    expect(await totalCalls()).toBe(recorded);
  });

  /**
   * A fault-injecting wrapper around the real store (not a mock): its first delivery is applied but
   * answers an error, as when Redis runs a script and the connection drops before the reply.
   */
  it('retries a delivery whose outcome was unknown without counting it twice', async () => {
    let failures = 1;
    const lossy: UsageCounterStore = {
      ...store,
      async add(cells, deliveryId) {
        await store.add(cells, deliveryId);
        if (failures-- > 0) throw new Error('connection lost before the reply');
      },
    };
    const recorder = createUsageRecorder({ store: lossy, logger: silentLogger(), flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) recorder.record(call());
    await expect(recorder.flushNow()).rejects.toThrow('connection lost');
    recorder.record(call());
    await recorder.flushNow();
    await recorder.close();
    await flushUsage({ store, database });
    expect(await totalCalls()).toBe(11);
  });

  it('keeps counting in process while the store is down, and hands everything over when it is back', async () => {
    let down = true;
    const flaky: UsageCounterStore = {
      ...store,
      async add(cells, deliveryId) {
        if (down) throw new Error('store down');
        await store.add(cells, deliveryId);
      },
    };
    const recorder = createUsageRecorder({ store: flaky, logger: silentLogger(), flushIntervalMs: 60_000 });
    recorder.record(call());
    await expect(recorder.flushNow()).rejects.toThrow('store down');
    recorder.record(call({ keyId: 'key-2' }));
    await expect(recorder.flushNow()).rejects.toThrow('store down');
    down = false;
    await recorder.flushNow();
    await recorder.close();
    await flushUsage({ store, database });
    expect(await totalCalls()).toBe(2);
  });
});
