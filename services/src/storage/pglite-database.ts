import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite, type Transaction, types } from '@electric-sql/pglite';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable, QueryResult } from './database.js';

export interface PgliteDatabaseOptions {
  /** Folder holding the database files; created when missing. */
  dataDir: string;
}

const lockFileName = 'tollgate.pid';

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite is a single-process database: two processes opening one folder would corrupt it. A lock
 * file naming the holder (`pid@host`) makes the second one stop with a clear error. A file left by a
 * process of this host that is gone is taken over; one from another host (or another container,
 * whose pids we cannot check) is respected until removed by hand.
 */
function lockDataDir(dataDir: string): () => void {
  const lockPath = join(dataDir, lockFileName);
  const me = `${process.pid}@${hostname()}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, me);
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readFileSync(lockPath, 'utf8').trim();
      const [pidText = '', host = hostname()] = holder.split('@');
      const pid = Number(pidText);
      const sameHost = host === hostname();
      if (!sameHost || (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processIsAlive(pid))) {
        throw new TollgateError(
          'data_dir_locked',
          `another Tollgate process (pid ${pid}${sameHost ? '' : ` on ${host}`}) is using ${dataDir}`,
          {
            hint: sameHost
              ? 'stop that process, or set TOLLGATE_DATA_DIR to another folder'
              : `stop that process, or delete ${lockPath} if it is gone; or set TOLLGATE_DATA_DIR to another folder`,
            details: { pid, host, dataDir },
          },
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new TollgateError('data_dir_locked', `could not lock ${dataDir}`, { details: { dataDir } });
}

// Match node-postgres: int8 and numeric stay strings (exact beyond 2^53), so both drivers return
// the same types to the code above them.
const parsers = {
  [types.INT8]: (value: string) => value,
  [types.NUMERIC]: (value: string) => value,
};

function queryable(client: Pick<Transaction, 'query' | 'exec'>): Queryable {
  return {
    async query<Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
      const result = await client.query<Row>(sql, params as unknown[] | undefined, { parsers });
      return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await client.exec(sql);
    },
  };
}

export async function openPgliteDatabase(options: PgliteDatabaseOptions): Promise<Database> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(join(dataDir, 'pgdata'), { parsers });
  } catch (error) {
    unlock();
    throw error;
  }
  const root = queryable(pglite);
  return {
    driver: 'pglite',
    location: options.dataDir,
    query: root.query,
    exec: root.exec,
    transaction: (fn) => pglite.transaction((tx) => fn(queryable(tx))),
    async ping() {
      await pglite.query('SELECT 1');
    },
    async close() {
      try {
        await pglite.close();
      } finally {
        unlock();
      }
    },
  };
}
