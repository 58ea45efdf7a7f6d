import type { DatabaseConfig } from '../config/config.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Logger } from '../logging/logger.js';
import type { Database } from './database.js';
import { openPgliteDatabase } from './pglite-database.js';
import { describePostgresUrl, openPostgresDatabase } from './postgres-database.js';

export interface OpenDatabaseOptions {
  logger: Logger;
  /** How long to keep retrying a PostgreSQL server that does not answer yet (it may be starting). */
  connectTimeoutMs?: number;
  /** Stops the waiting (e.g. Ctrl-C during start-up) with an `interrupted` error. */
  signal?: AbortSignal;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * Failures worth waiting out: the server is not up yet (network errors, "the database system is
 * starting up"). A wrong password or a missing database will not fix itself, so those fail at once.
 */
const transientCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  '57P03',
]);

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return transientCodes.has(code);
  return /timeout|terminated/i.test((error as Error).message ?? '');
}

/** Opens the configured driver: PostgreSQL when DATABASE_URL is set, PGlite otherwise. */
export async function openDatabase(config: DatabaseConfig, options: OpenDatabaseOptions): Promise<Database> {
  if (config.driver === 'pglite') return openPgliteDatabase({ dataDir: config.dataDir });

  const deadline = Date.now() + (options.connectTimeoutMs ?? 30_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await openPostgresDatabase({ url: config.url, logger: options.logger });
    } catch (error) {
      const reason = (error as Error).message || String(error);
      if (!isTransient(error) || Date.now() >= deadline) {
        throw new TollgateError(
          'database_unreachable',
          `could not connect to ${describePostgresUrl(config.url)}: ${reason}`,
          {
            hint: 'check that PostgreSQL is running and that DATABASE_URL is right',
            cause: error,
          },
        );
      }
      options.logger.warn({ attempt, reason }, 'PostgreSQL is not answering yet; retrying');
      await sleep(Math.min(250 * attempt, 2_000), options.signal);
      if (options.signal?.aborted) {
        throw new TollgateError('interrupted', 'stopped while waiting for PostgreSQL', { cause: error });
      }
    }
  }
}
