import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';
import type { Database, Queryable } from './database.js';

export interface Migration {
  /** The number that orders it, from the file name `0001_core_tables.sql`. */
  id: number;
  name: string;
  sql: string;
  /** SHA-256 of the file, so an edit to an applied migration is caught. */
  checksum: string;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
}

/** `services/migrations/`, the same path from `src/` (tests) and from `dist/` (built). */
export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));

const fileNamePattern = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * Held for each migration step, so two processes starting at once against one server apply each
 * migration exactly once. A transaction-level lock is released by COMMIT/ROLLBACK, so a crash can
 * never leave it held. The number is arbitrary but fixed forever.
 */
const migrationLockKey = 7_326_854_012_341;

export async function loadMigrations(dir: string = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = fileNamePattern.exec(file);
    if (!match?.[1] || !match[2]) {
      throw new TollgateError('migration_failed', `migration file ${file} is not named NNNN_name.sql`);
    }
    const sql = (await readFile(`${dir}/${file}`, 'utf8')).replace(/\r\n/g, '\n');
    const id = Number(match[1]);
    if (migrations.some((existing) => existing.id === id)) {
      throw new TollgateError('migration_failed', `two migration files share the number ${match[1]}`);
    }
    migrations.push({
      id,
      name: file.replace(/\.sql$/, ''),
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  return migrations;
}

interface AppliedRow {
  id: number;
  name: string;
  checksum: string;
}

async function lock(tx: Queryable): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey]);
}

/**
 * Applies the migrations the database has not seen, in order, each in its own transaction together
 * with its row in `schema_migrations`. Forward-only: an applied migration whose file changed, or an
 * applied migration this version does not know (the database is newer than the code), stops start-up.
 */
export async function runMigrations(
  database: Database,
  options: { migrations?: Migration[]; logger?: Logger } = {},
): Promise<MigrationReport> {
  const migrations = options.migrations ?? (await loadMigrations());
  const applied = await database.transaction(async (tx) => {
    await lock(tx);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    return (await tx.query<AppliedRow>('SELECT id, name, checksum FROM schema_migrations ORDER BY id')).rows;
  });

  const known = new Map(migrations.map((migration) => [migration.id, migration]));
  for (const row of applied) {
    const migration = known.get(row.id);
    if (!migration) {
      throw new TollgateError(
        'schema_ahead',
        `the database has migration ${row.name}, which this version does not know`,
        {
          hint: 'run the Tollgate version that applied it, or a newer one',
        },
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new TollgateError('migration_modified', `migration ${row.name} was changed after it was applied`, {
        hint: 'migrations are forward-only: restore the file and add a new migration instead',
      });
    }
  }

  const report: MigrationReport = { applied: [], alreadyApplied: applied.length };
  const appliedIds = new Set(applied.map((row) => row.id));
  for (const migration of migrations) {
    if (appliedIds.has(migration.id)) continue;
    const ran = await database.transaction(async (tx) => {
      await lock(tx);
      // Another process may have applied it while we waited for the lock.
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE id = $1', [migration.id]);
      if (done.rowCount > 0) return false;
      try {
        await tx.exec(migration.sql);
      } catch (error) {
        throw new TollgateError('migration_failed', `migration ${migration.name} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      await tx.query('INSERT INTO schema_migrations (id, name, checksum) VALUES ($1, $2, $3)', [
        migration.id,
        migration.name,
        migration.checksum,
      ]);
      return true;
    });
    if (ran) {
      report.applied.push(migration.name);
      options.logger?.info({ migration: migration.name }, 'applied migration');
    } else {
      report.alreadyApplied++;
    }
  }
  return report;
}
