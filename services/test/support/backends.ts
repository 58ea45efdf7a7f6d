import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { CounterConfig, DatabaseConfig } from '../../src/config/config.js';
import type { CounterStore } from '../../src/counters/counter-store.js';
import { openCounterStore } from '../../src/counters/open-counter-store.js';
import { openRefreshTokenStore } from '../../src/identity/open-refresh-token-store.js';
import type { RefreshTokenStore } from '../../src/identity/refresh-token-store.js';
import { createLogger, type Logger } from '../../src/logging/logger.js';
import type { Database } from '../../src/storage/database.js';
import { openDatabase } from '../../src/storage/open-database.js';

/** Real servers when these are set (CI sets both); the embedded drivers otherwise. */
export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;
export const testRedisUrl = process.env.TEST_REDIS_URL || undefined;

export const expectedDatabaseDriver = testDatabaseUrl ? 'postgres' : 'pglite';
export const expectedCounterDriver = testRedisUrl ? 'redis' : 'memory';
/** Refresh tokens live in Redis when it is configured, else in the database. */
export const expectedRefreshTokenDriver = testRedisUrl ? 'redis' : 'postgres';

export function silentLogger(): Logger {
  return createLogger({ level: 'silent' });
}

export interface Disposable<T> {
  value: T;
  dispose(): Promise<void>;
}

function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * A database nobody else uses: a new database on the TEST_DATABASE_URL server (dropped afterwards),
 * or a new PGlite folder under the system temp dir.
 */
export async function createTestDatabaseConfig(): Promise<Disposable<DatabaseConfig>> {
  if (!testDatabaseUrl) {
    const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-test-'));
    return { value: { driver: 'pglite', dataDir }, dispose: () => rm(dataDir, { recursive: true, force: true }) };
  }
  const name = uniqueName('tollgate_test');
  const admin = new pg.Client({ connectionString: testDatabaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(testDatabaseUrl);
  url.pathname = `/${name}`;
  return {
    value: { driver: 'postgres', url: url.toString() },
    async dispose() {
      const client = new pg.Client({ connectionString: testDatabaseUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export async function openTestDatabase(): Promise<Disposable<Database>> {
  const config = await createTestDatabaseConfig();
  const database = await openDatabase(config.value, { logger: silentLogger(), connectTimeoutMs: 5_000 });
  return {
    value: database,
    async dispose() {
      await database.close().catch(() => undefined);
      await config.dispose();
    },
  };
}

export function testCounterConfig(): CounterConfig {
  return testRedisUrl ? { driver: 'redis', url: testRedisUrl } : { driver: 'memory' };
}

export async function openTestCounters(): Promise<Disposable<CounterStore>> {
  // A prefix per store: test files run in parallel against one Redis and must not share limits.
  const counters = await openCounterStore(testCounterConfig(), {
    logger: silentLogger(),
    keyPrefix: `${uniqueName('test')}:`,
  });
  return { value: counters, dispose: () => counters.close() };
}

export interface TestRefreshTokens extends Disposable<RefreshTokenStore> {
  /** Before each of its Redis keys (dumpRedisKeys); empty on the database. */
  keyPrefix: string;
}

/**
 * The refresh-token store the suites use: Redis under a key prefix of its own with TEST_REDIS_URL,
 * the database's `refresh_tokens` otherwise. `redisUrl` points it elsewhere, e.g. through a TcpProxy.
 */
export async function openTestRefreshTokens(
  database: Database,
  options: { redisUrl?: string } = {},
): Promise<TestRefreshTokens> {
  const redisUrl = options.redisUrl ?? testRedisUrl;
  const keyPrefix = redisUrl ? `${uniqueName('test')}:` : '';
  const store = await openRefreshTokenStore(redisUrl ? { driver: 'redis', url: redisUrl } : { driver: 'memory' }, {
    database,
    logger: silentLogger(),
    keyPrefix,
  });
  return { value: store, keyPrefix, dispose: () => store.close() };
}

/** A key no other test (or earlier run against the same Redis) uses. */
export function uniqueKey(label: string): string {
  return uniqueName(`test:${label}`);
}
