import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TollgateError } from '../src/errors/tollgate-error.js';
import type { Database } from '../src/storage/database.js';
import { loadMigrations, runMigrations } from '../src/storage/migrate.js';
import { openDatabase } from '../src/storage/open-database.js';
import {
  createTestDatabaseConfig,
  expectedDatabaseDriver,
  openTestDatabase,
  silentLogger,
  testDatabaseUrl,
} from './support/backends.js';

async function failure(promise: Promise<unknown>): Promise<TollgateError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (error instanceof TollgateError) return error;
  throw new Error(`expected a TollgateError, got ${String(error)}`);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function freshDatabase(): Promise<Database> {
  const opened = await openTestDatabase();
  cleanups.push(opened.dispose);
  return opened.value;
}

async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-migrations-'));
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function tableNames(database: Database): Promise<string[]> {
  const result = await database.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`,
  );
  return result.rows.map((row) => row.table_name);
}

describe(`migrations (${expectedDatabaseDriver})`, () => {
  it('create the core tables with UUID ids and timestamptz times on a fresh database', async () => {
    const database = await freshDatabase();
    expect(database.driver).toBe(expectedDatabaseDriver);
    const report = await runMigrations(database);
    const files = await loadMigrations();
    expect(report).toEqual({ applied: files.map((file) => file.name), alreadyApplied: 0 });
    expect(await tableNames(database)).toEqual(
      expect.arrayContaining(['api_keys', 'assets', 'schema_migrations', 'subscriptions', 'teams', 'users']),
    );
    const columns = await database.query<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name IN ('users', 'teams', 'subscriptions', 'api_keys', 'assets')
         AND (column_name = 'id' OR column_name LIKE '%\\_at')`,
    );
    expect(columns.rows.length).toBeGreaterThan(10);
    for (const column of columns.rows) {
      expect(`${column.table_name}.${column.column_name}: ${column.data_type}`).toBe(
        `${column.table_name}.${column.column_name}: ${column.column_name === 'id' ? 'uuid' : 'timestamp with time zone'}`,
      );
    }
  });

  it('apply nothing the second time', async () => {
    const database = await freshDatabase();
    const first = await runMigrations(database);
    const second = await runMigrations(database);
    expect(second).toEqual({ applied: [], alreadyApplied: first.applied.length });
    const recorded = await database.query<{ count: string }>('SELECT count(*) AS count FROM schema_migrations');
    expect(Number(recorded.rows[0]?.count)).toBe(first.applied.length);
  });

  it('are applied exactly once when two runners start at the same moment', async () => {
    const config = await createTestDatabaseConfig();
    cleanups.push(config.dispose);
    const logger = silentLogger();
    // Two independent connections (pools) on PostgreSQL; PGlite has one connection per folder, so
    // there both runners share it and race through the same lock.
    const first = await openDatabase(config.value, { logger });
    const second = config.value.driver === 'postgres' ? await openDatabase(config.value, { logger }) : first;
    cleanups.push(async () => {
      await first.close();
      if (second !== first) await second.close();
    });
    const dir = await migrationsDir({
      '0001_counter.sql': 'CREATE TABLE applied_log (migration integer NOT NULL); INSERT INTO applied_log VALUES (1);',
      '0002_slow.sql': 'SELECT pg_sleep(0.2); INSERT INTO applied_log VALUES (2);',
      '0003_more.sql': 'INSERT INTO applied_log VALUES (3);',
    });
    const migrations = await loadMigrations(dir);
    const [a, b] = await Promise.all([runMigrations(first, { migrations }), runMigrations(second, { migrations })]);
    expect([...a.applied, ...b.applied].sort()).toEqual(['0001_counter', '0002_slow', '0003_more']);
    const log = await first.query<{ migration: number }>('SELECT migration FROM applied_log ORDER BY migration');
    expect(log.rows.map((row) => row.migration)).toEqual([1, 2, 3]);
  });

  it('stop with migration_modified when an applied file changed, applying nothing after it', async () => {
    const database = await freshDatabase();
    const original = await migrationsDir({ '0001_a.sql': 'CREATE TABLE a (id int);' });
    await runMigrations(database, { migrations: await loadMigrations(original) });
    const edited = await migrationsDir({
      '0001_a.sql': 'CREATE TABLE a (id bigint);',
      '0002_b.sql': 'CREATE TABLE b (id int);',
    });
    const error = await failure(runMigrations(database, { migrations: await loadMigrations(edited) }));
    expect(error.code).toBe('migration_modified');
    expect(error.message).toContain('0001_a');
    expect(await tableNames(database)).not.toContain('b');
  });

  it('stop with schema_ahead when the database knows a migration this version does not', async () => {
    const database = await freshDatabase();
    const newer = await migrationsDir({ '0001_a.sql': 'SELECT 1;', '0002_b.sql': 'SELECT 1;' });
    await runMigrations(database, { migrations: await loadMigrations(newer) });
    const older = await migrationsDir({ '0001_a.sql': 'SELECT 1;' });
    expect((await failure(runMigrations(database, { migrations: await loadMigrations(older) }))).code).toBe(
      'schema_ahead',
    );
  });

  it('roll back a failing migration whole and keep the ones before it', async () => {
    const database = await freshDatabase();
    const dir = await migrationsDir({
      '0001_good.sql': 'CREATE TABLE good (id int);',
      '0002_bad.sql': 'CREATE TABLE half_done (id int); SELECT * FROM no_such_table;',
    });
    const error = await failure(runMigrations(database, { migrations: await loadMigrations(dir) }));
    expect(error.code).toBe('migration_failed');
    expect(error.message).toContain('0002_bad');
    const tables = await tableNames(database);
    expect(tables).toContain('good');
    expect(tables).not.toContain('half_done');
    const recorded = await database.query<{ name: string }>('SELECT name FROM schema_migrations');
    expect(recorded.rows.map((row) => row.name)).toEqual(['0001_good']);
  });

  it('refuse badly named migration files', async () => {
    const dir = await migrationsDir({ 'add_users.sql': 'SELECT 1;' });
    expect((await failure(loadMigrations(dir))).code).toBe('migration_failed');
  });
});

describe(`database driver (${expectedDatabaseDriver})`, () => {
  let database: Database;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    const opened = await openTestDatabase();
    database = opened.value;
    dispose = opened.dispose;
    await runMigrations(database);
  });
  afterAll(() => dispose());

  it('returns the same JavaScript types on both drivers', async () => {
    const result = await database.query<Record<string, unknown>>(
      `SELECT '00000000-0000-4000-8000-000000000001'::uuid AS id, 9007199254740993::int8 AS big,
              0.0004::numeric AS price, '2026-01-31T12:00:00Z'::timestamptz AS at, '{"a":[1]}'::jsonb AS doc,
              true AS flag, ARRAY['keys:write','billing:read']::text[] AS scopes, 7::int4 AS small`,
    );
    const row = result.rows[0];
    expect(row).toEqual({
      id: '00000000-0000-4000-8000-000000000001',
      big: '9007199254740993',
      price: '0.0004',
      at: new Date('2026-01-31T12:00:00Z'),
      doc: { a: [1] },
      flag: true,
      scopes: ['keys:write', 'billing:read'],
      small: 7,
    });
  });

  it('takes parameters and reports affected rows', async () => {
    const inserted = await database.query(`INSERT INTO users (email, name) VALUES ($1, $2), ($3, $4)`, [
      'ada@example.com',
      'Ada',
      'grace@example.com',
      'Grace',
    ]);
    expect(inserted.rowCount).toBe(2);
    const found = await database.query<{ name: string }>('SELECT name FROM users WHERE lower(email) = lower($1)', [
      'ADA@example.com',
    ]);
    expect(found.rows).toEqual([{ name: 'Ada' }]);
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await database.transaction(async (tx) => {
      await tx.query(`INSERT INTO teams (name, slug) VALUES ('Kept', 'kept')`);
    });
    await expect(
      database.transaction(async (tx) => {
        await tx.query(`INSERT INTO teams (name, slug) VALUES ('Lost', 'lost')`);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const slugs = await database.query<{ slug: string }>(`SELECT slug FROM teams WHERE slug IN ('kept', 'lost')`);
    expect(slugs.rows).toEqual([{ slug: 'kept' }]);
  });

  it('enforces the core tables’ constraints: one live subscription per team, 32-byte key hashes', async () => {
    const team = await database.query<{ id: string }>(
      `INSERT INTO teams (name, slug) VALUES ('Acme', 'acme') RETURNING id`,
    );
    const teamId = team.rows[0]?.id;
    const subscribe = () =>
      database.query(
        `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
         VALUES ($1, (SELECT id FROM plans WHERE slug = 'free'), 'active', 'USD', 'month', '2026-11-01', '2026-12-01')`,
        [teamId],
      );
    await subscribe();
    await expect(subscribe()).rejects.toThrow(/subscriptions_one_live_per_team/);
    // A subscription names a plan that exists.
    await expect(
      database.query(
        `INSERT INTO subscriptions (team_id, plan_id, status, currency, billing_interval, current_period_start, current_period_end)
         VALUES ($1, gen_random_uuid(), 'canceled', 'USD', 'month', '2026-11-01', '2026-12-01')`,
        [teamId],
      ),
    ).rejects.toThrow(/subscriptions_plan_id_fkey/);
    await expect(
      database.query(
        `INSERT INTO api_keys (team_id, mode, lookup_id, secret_sha256) VALUES ($1, 'live', 'abcdefgh12', $2)`,
        [teamId, Buffer.alloc(16)],
      ),
    ).rejects.toThrow(/secret_sha256/);
    const keys = await database.query('SELECT 1 FROM api_keys WHERE team_id = $1', [teamId]);
    expect(keys.rowCount).toBe(0);
  });

  it('answers ping while open and fails it once closed', async () => {
    const opened = await openTestDatabase();
    await expect(opened.value.ping()).resolves.toBeUndefined();
    await opened.value.close();
    await expect(opened.value.ping()).rejects.toThrow();
    await opened.dispose();
  });
});

describe('PGlite data folder', () => {
  it('cannot be opened by a second Tollgate while the first holds it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-lock-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await openDatabase({ driver: 'pglite', dataDir }, { logger: silentLogger() });
    try {
      // The lock is per process; pretend to be another live process by writing our parent's pid.
      await writeFile(join(dataDir, 'tollgate.pid'), String(process.ppid));
      const error = await failure(openDatabase({ driver: 'pglite', dataDir }, { logger: silentLogger() }));
      expect(error.code).toBe('data_dir_locked');
      expect(error.message).toContain(String(process.ppid));
    } finally {
      await writeFile(join(dataDir, 'tollgate.pid'), String(process.pid));
      await first.close();
    }
    // A lock held on another host (another container sharing the volume) is respected.
    await writeFile(join(dataDir, 'tollgate.pid'), `${process.pid}@another-container`);
    const elsewhere = await failure(openDatabase({ driver: 'pglite', dataDir }, { logger: silentLogger() }));
    expect(elsewhere.code).toBe('data_dir_locked');
    expect(elsewhere.message).toContain('on another-container');
    expect(elsewhere.hint).toContain('delete');
    // A lock left by a process of this host that is gone is taken over.
    await writeFile(join(dataDir, 'tollgate.pid'), `999999999@${hostname()}`);
    const reopened = await openDatabase({ driver: 'pglite', dataDir }, { logger: silentLogger() });
    await reopened.close();
  });
});

describe('PostgreSQL connection errors', () => {
  it('give up on a server that keeps refusing with database_unreachable, without the password', async () => {
    const error = await failure(
      openDatabase(
        { driver: 'postgres', url: 'postgres://tollgate:s3cret@127.0.0.1:1/tollgate' },
        { logger: silentLogger(), connectTimeoutMs: 300 },
      ),
    );
    expect(error.code).toBe('database_unreachable');
    expect(error.message).toContain('postgres://tollgate@127.0.0.1:1/tollgate');
    expect(error.message).not.toContain('s3cret');
  });

  it.skipIf(!testDatabaseUrl)('fail at once, without retrying, when the database does not exist', async () => {
    const url = new URL(testDatabaseUrl ?? 'postgres://unused');
    url.pathname = '/tollgate_no_such_database';
    const started = performance.now();
    const error = await failure(
      openDatabase({ driver: 'postgres', url: url.toString() }, { logger: silentLogger(), connectTimeoutMs: 20_000 }),
    );
    expect(error.code).toBe('database_unreachable');
    expect(error.message).toContain('tollgate_no_such_database');
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
