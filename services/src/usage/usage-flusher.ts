import { randomUUID } from 'node:crypto';
import type { Job } from '../jobs/job-runner.js';
import type { Logger } from '../logging/logger.js';
import type { Database } from '../storage/database.js';
import type { UsageCounterStore } from './usage-counter-store.js';
import { pruneUsageIdempotencyKeys } from './usage-reports.js';
import { addToRollups } from './usage-rollups.js';

export interface FlushUsageOptions {
  store: UsageCounterStore;
  database: Database;
  logger?: Logger;
  /** A new batch id; random by default. */
  newBatchId?: () => string;
}

export interface FlushReport {
  /** Batches written to the rollups by this flush. */
  written: string[];
  /** Sealed batches found already written (a flusher stopped before removing them): only removed. */
  alreadyWritten: string[];
  /** Cells written. */
  cells: number;
}

/**
 * Moves counted usage from the counter store into the rollup tables, exactly once:
 *
 * 1. Sealed batches left by a flush that stopped half-way are finished first (steps 3 and 4).
 * 2. The open batch is sealed under a new batch id (atomically: gateways count on in a new one).
 * 3. In ONE transaction: the batch id is inserted into `usage_flushes` and, only when it was not
 *    there yet, the batch is added to usage_minute, usage_hour and usage_day.
 * 4. The sealed batch is removed from the store.
 *
 * A stop before 3 commits leaves the batch sealed and nothing written: the next flush writes it. A
 * stop after 3 commits leaves it sealed and written: the next flush finds its id in `usage_flushes`
 * and only removes it. Two flushers working on one batch at once serialise on the `usage_flushes`
 * row; the second finds it written.
 */
export async function flushUsage(options: FlushUsageOptions): Promise<FlushReport> {
  const { store, database } = options;
  const report: FlushReport = { written: [], alreadyWritten: [], cells: 0 };
  const finish = async (batchId: string) => {
    const cells = await store.readSealed(batchId);
    const wrote = await database.transaction(async (tx) => {
      const claimed = await tx.query(
        `INSERT INTO usage_flushes (batch_id, cells) VALUES ($1, $2) ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id`,
        [batchId, cells.length],
      );
      if (claimed.rows.length === 0) return false;
      await addToRollups(tx, cells);
      return true;
    });
    await store.removeSealed(batchId);
    if (wrote) {
      report.written.push(batchId);
      report.cells += cells.length;
    } else {
      report.alreadyWritten.push(batchId);
      options.logger?.info({ batchId }, 'removed a usage batch an earlier flush had written');
    }
  };

  for (const batchId of await store.sealedBatches()) await finish(batchId);
  const batchId = options.newBatchId?.() ?? `${Date.now().toString(36)}-${randomUUID()}`;
  if (await store.seal(batchId)) await finish(batchId);
  return report;
}

/** Batch ids are kept this long; a sealed batch older than that could be written twice. */
export const usageFlushRetentionMs = 30 * 86_400_000;
const usageFlushIntervalMs = 5_000;
const pruneEveryMs = 3_600_000;

/**
 * The worker job: flushes usage every 5 seconds (so rollups trail the gateways by at most about 10
 * seconds: up to 1 s in a gateway, up to 5 s in the store, then the flush itself), and once an hour
 * forgets batch ids older than 30 days and idempotency keys of reported usage older than 35 days.
 */
export function usageFlushJob(options: { store: UsageCounterStore; database: Database; logger: Logger }): Job {
  let lastPrune = 0;
  return {
    name: 'usage-flush',
    intervalMs: usageFlushIntervalMs,
    async run() {
      const report = await flushUsage(options);
      if (report.written.length > 0) {
        options.logger.debug({ batches: report.written.length, cells: report.cells }, 'usage flushed');
      }
      if (Date.now() - lastPrune >= pruneEveryMs) {
        lastPrune = Date.now();
        await options.database.query(`DELETE FROM usage_flushes WHERE flushed_at < now() - make_interval(secs => $1)`, [
          usageFlushRetentionMs / 1000,
        ]);
        await pruneUsageIdempotencyKeys(options.database);
      }
    },
  };
}
