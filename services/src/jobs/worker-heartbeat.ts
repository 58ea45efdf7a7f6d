import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Queryable } from '../storage/database.js';
import { tollgateVersion } from '../version.js';
import type { Job } from './job-runner.js';

/** A worker not seen for this long is counted as gone. */
export const workerStaleAfterMs = 30_000;
const heartbeatIntervalMs = 5_000;

/** Records every few seconds that this worker process is alive, and forgets workers gone for a day. */
export function workerHeartbeatJob(database: Queryable): Job {
  const instanceId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const startedAt = new Date();
  return {
    name: 'worker-heartbeat',
    intervalMs: heartbeatIntervalMs,
    async run() {
      await database.query(
        `INSERT INTO worker_heartbeats (instance_id, hostname, pid, version, started_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (instance_id) DO UPDATE SET last_seen_at = now()`,
        [instanceId, hostname(), process.pid, tollgateVersion, startedAt],
      );
      await database.query(`DELETE FROM worker_heartbeats WHERE last_seen_at < now() - interval '1 day'`);
    },
  };
}

/** Workers that reported within the last 30 seconds. */
export async function countLiveWorkers(database: Queryable): Promise<number> {
  const result = await database.query<{ alive: string }>(
    `SELECT count(*) AS alive FROM worker_heartbeats WHERE last_seen_at > now() - make_interval(secs => $1)`,
    [workerStaleAfterMs / 1000],
  );
  return Number(result.rows[0]?.alive ?? 0);
}
