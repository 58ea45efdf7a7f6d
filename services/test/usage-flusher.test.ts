import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../src/storage/database.js';
import { runMigrations } from '../src/storage/migrate.js';
import { createMemoryUsageCounterStore } from '../src/usage/memory-usage-counter-store.js';
import { openRedisUsageCounterStore } from '../src/usage/redis-usage-counter-store.js';
import {
  emptyCounts,
  type UsageCell,
  type UsageCounterStore,
  type UsageCounts,
} from '../src/usage/usage-counter-store.js';
import { flushUsage } from '../src/usage/usage-flusher.js';
import {
  expectedCounterDriver,
  expectedDatabaseDriver,
  openTestDatabase,
  silentLogger,
  testRedisUrl,
  uniqueKey,
} from './support/backends.js';

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
  // A key prefix of its own per test: test files share one Redis.
  store = testRedisUrl
    ? await openRedisUsageCounterStore(
        { driver: 'redis', url: testRedisUrl },
        { logger: silentLogger(), keyPrefix: `${uniqueKey('usage')}:` },
      )
    : createMemoryUsageCounterStore();
});
afterEach(async () => {
  await store.close();
});

const minute = (iso: string) => Date.parse(iso);

function cell(
  at: string,
  counts: Partial<UsageCounts>,
  ids: Partial<Pick<UsageCell, 'teamId' | 'keyId' | 'apiId'>> = {},
) {
  return {
    minute: minute(at),
    teamId: ids.teamId ?? 'team-a',
    keyId: ids.keyId ?? 'key-1',
    apiId: ids.apiId ?? 'api-1',
    counts: { ...emptyCounts(), ...counts },
  } satisfies UsageCell;
}

const sumColumns =
  'coalesce(sum(calls), 0) AS calls, coalesce(sum(request_bytes), 0) AS request_bytes, coalesce(sum(response_bytes), 0) AS response_bytes, coalesce(sum(latency_us_sum), 0) AS latency_us_sum, coalesce(max(latency_us_max), 0) AS latency_us_max, coalesce(sum(status_2xx), 0) AS status_2xx, coalesce(sum(status_5xx), 0) AS status_5xx, coalesce(sum(overage_calls), 0) AS overage_calls';

async function totals(table: 'usage_minute' | 'usage_hour' | 'usage_day') {
  const result = await database.query<Record<string, string>>(`SELECT ${sumColumns} FROM ${table}`);
  return Object.fromEntries(Object.entries(result.rows[0] ?? {}).map(([name, value]) => [name, Number(value)]));
}

/**
 * The real database with one fault injected (a test double around the real thing, not a mock): the
 * flusher "crashes" after writing the rollups but before the commit, or after the commit but before
 * it removes the batch from the counter store. Each fault fires once.
 */
function crashingDatabase(real: Database, when: 'before-commit' | 'after-commit'): Database {
  let armed = true;
  return {
    driver: real.driver,
    location: real.location,
    query: (sql, params) => real.query(sql, params),
    exec: (sql) => real.exec(sql),
    ping: () => real.ping(),
    close: async () => {},
    async transaction(fn) {
      const result = await real.transaction(async (tx) => {
        const faulty: Queryable = {
          async query(sql, params) {
            const answer = await tx.query(sql, params);
            if (armed && when === 'before-commit' && sql.includes('INTO usage_day')) {
              armed = false;
              throw new Error('flusher killed before commit');
            }
            return answer as never;
          },
          exec: (sql) => tx.exec(sql),
        };
        return fn(faulty);
      });
      if (armed && when === 'after-commit') {
        armed = false;
        throw new Error('flusher killed after commit');
      }
      return result;
    },
  };
}

describe(`the usage flusher (${expectedCounterDriver} counters, ${expectedDatabaseDriver})`, () => {
  it('moves counted usage into the minute, hour and day rollups, which agree', async () => {
    await store.add(
      [
        cell('2026-03-01T23:58:00Z', {
          calls: 3,
          requestBytes: 300,
          responseBytes: 3000,
          latencyUsSum: 900,
          latencyUsMax: 500,
          status2xx: 3,
        }),
        cell('2026-03-01T23:59:00Z', {
          calls: 2,
          requestBytes: 20,
          responseBytes: 200,
          latencyUsSum: 100,
          latencyUsMax: 70,
          status5xx: 2,
        }),
        cell('2026-03-02T00:00:00Z', {
          calls: 5,
          requestBytes: 50,
          responseBytes: 500,
          latencyUsSum: 5000,
          latencyUsMax: 2000,
          status2xx: 5,
          overageCalls: 1,
        }),
        cell('2026-03-02T00:00:00Z', { calls: 1, status2xx: 1 }, { keyId: 'key-2' }),
      ],
      'delivery-1',
    );
    const report = await flushUsage({ store, database });
    expect(report.written).toHaveLength(1);
    expect(await store.sealedBatches()).toEqual([]);

    const expected = {
      calls: 11,
      request_bytes: 370,
      response_bytes: 3700,
      latency_us_sum: 6000,
      latency_us_max: 2000,
      status_2xx: 9,
      status_5xx: 2,
      overage_calls: 1,
    };
    expect(await totals('usage_minute')).toEqual(expected);
    expect(await totals('usage_hour')).toEqual(expected);
    expect(await totals('usage_day')).toEqual(expected);
    const days = await database.query<{ period_start: Date; calls: string; latency_us_max: string }>(
      `SELECT period_start, sum(calls) AS calls, max(latency_us_max) AS latency_us_max FROM usage_day GROUP BY period_start ORDER BY period_start`,
    );
    expect(
      days.rows.map((row) => [row.period_start.toISOString(), Number(row.calls), Number(row.latency_us_max)]),
    ).toEqual([
      ['2026-03-01T00:00:00.000Z', 5, 500],
      ['2026-03-02T00:00:00.000Z', 6, 2000],
    ]);
    const hours = await database.query<{ n: string }>(`SELECT count(*) AS n FROM usage_hour`);
    // 23:00 on the 1st (one key), 00:00 on the 2nd (two keys).
    expect(Number(hours.rows[0]?.n)).toBe(3);
  });

  it('adds a second flush to the rows of the first (upsert-add, maxima kept)', async () => {
    await store.add([cell('2026-03-01T10:00:00Z', { calls: 1, latencyUsMax: 900, status2xx: 1 })], 'first');
    await flushUsage({ store, database });
    await store.add([cell('2026-03-01T10:00:00Z', { calls: 2, latencyUsMax: 100, status2xx: 2 })], 'second');
    await flushUsage({ store, database });
    expect(await totals('usage_minute')).toMatchObject({ calls: 3, latency_us_max: 900, status_2xx: 3 });
    expect(await totals('usage_day')).toMatchObject({ calls: 3, latency_us_max: 900 });
  });

  it('counts a delivery retried under the same id once', async () => {
    const cells = [cell('2026-03-01T10:00:00Z', { calls: 7, status2xx: 7 })];
    await store.add(cells, 'retried');
    await store.add(cells, 'retried');
    await flushUsage({ store, database });
    expect(await totals('usage_minute')).toMatchObject({ calls: 7 });
  });

  it('loses nothing when killed after writing the rollups but before the commit', async () => {
    await store.add([cell('2026-03-01T10:00:00Z', { calls: 10, requestBytes: 100, status2xx: 10 })], 'a');
    await expect(flushUsage({ store, database: crashingDatabase(database, 'before-commit') })).rejects.toThrow(
      'killed before commit',
    );
    // Rolled back: nothing written, the batch is still sealed in the store.
    expect(await totals('usage_minute')).toMatchObject({ calls: 0 });
    expect(await store.sealedBatches()).toHaveLength(1);

    // Gateways count on meanwhile.
    await store.add([cell('2026-03-01T10:01:00Z', { calls: 4, requestBytes: 40, status2xx: 4 })], 'b');
    const report = await flushUsage({ store, database });
    expect(report.written).toHaveLength(2);
    expect(await store.sealedBatches()).toEqual([]);
    for (const table of ['usage_minute', 'usage_hour', 'usage_day'] as const) {
      expect(await totals(table)).toMatchObject({ calls: 14, request_bytes: 140, status_2xx: 14 });
    }
  });

  it('counts nothing twice when killed after the commit but before removing the batch', async () => {
    await store.add([cell('2026-03-01T10:00:00Z', { calls: 10, responseBytes: 1000, status2xx: 10 })], 'a');
    await expect(flushUsage({ store, database: crashingDatabase(database, 'after-commit') })).rejects.toThrow(
      'killed after commit',
    );
    // Written, but still sealed in the store.
    expect(await totals('usage_minute')).toMatchObject({ calls: 10 });
    const [leftover] = await store.sealedBatches();
    expect(leftover).toBeDefined();

    await store.add([cell('2026-03-01T10:00:00Z', { calls: 1, responseBytes: 10, status2xx: 1 })], 'b');
    const report = await flushUsage({ store, database });
    expect(report.alreadyWritten).toEqual([leftover]);
    expect(report.written).toHaveLength(1);
    expect(await store.sealedBatches()).toEqual([]);
    for (const table of ['usage_minute', 'usage_hour', 'usage_day'] as const) {
      expect(await totals(table)).toMatchObject({ calls: 11, response_bytes: 1010, status_2xx: 11 });
    }
  });

  it('stays exact when two flushers finish the same leftover batch at once', async () => {
    await store.add([cell('2026-03-01T10:00:00Z', { calls: 5, status2xx: 5 })], 'a');
    await expect(flushUsage({ store, database: crashingDatabase(database, 'before-commit') })).rejects.toThrow();
    await store.add([cell('2026-03-01T10:00:00Z', { calls: 2, status2xx: 2 })], 'b');
    const reports = await Promise.all([flushUsage({ store, database }), flushUsage({ store, database })]);
    const written = reports.flatMap((report) => report.written);
    expect(new Set(written).size).toBe(written.length);
    expect(await totals('usage_day')).toMatchObject({ calls: 7, status_2xx: 7 });
    expect(await store.sealedBatches()).toEqual([]);
  });
});
