import { z } from 'zod';
import type { CounterStore } from '../counters/counter-store.js';
import { countLiveWorkers } from '../jobs/worker-heartbeat.js';
import type { Database } from '../storage/database.js';
import { withTimeout } from '../timing/with-timeout.js';
import { tollgateVersion } from '../version.js';

const componentCheckSchema = z.object({
  status: z.enum(['up', 'down']),
  driver: z.string().describe('postgres or pglite; redis, redis-cluster or memory'),
  latency_ms: z.number().describe('How long the check took'),
  error: z.string().optional().describe('Why the component is down'),
});

export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  version: z.string(),
  checks: z.object({ database: componentCheckSchema, counters: componentCheckSchema }),
  workers: z
    .object({ alive: z.number().int().describe('Background workers seen in the last 30 seconds') })
    .optional()
    .describe('Absent when the database is down'),
});

export type Readiness = z.infer<typeof readinessSchema>;
type ComponentCheck = z.infer<typeof componentCheckSchema>;

async function check(driver: string, probe: () => Promise<void>, timeoutMs: number): Promise<ComponentCheck> {
  const started = performance.now();
  const latency = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    await withTimeout(probe(), timeoutMs, `${driver} check`);
    return { status: 'up', driver, latency_ms: latency() };
  } catch (error) {
    return { status: 'down', driver, latency_ms: latency(), error: (error as Error).message || String(error) };
  }
}

/** Checks the database and the counter store in parallel; ready only when both answer. */
export async function checkReadiness(options: {
  database: Database;
  counters: CounterStore;
  timeoutMs?: number;
}): Promise<Readiness> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const [database, counters] = await Promise.all([
    check(options.database.driver, () => options.database.ping(), timeoutMs),
    check(options.counters.driver, () => options.counters.ping(), timeoutMs),
  ]);
  const workers =
    database.status === 'up'
      ? await countLiveWorkers(options.database).then(
          (alive) => ({ alive }),
          () => undefined,
        )
      : undefined;
  return {
    status: database.status === 'up' && counters.status === 'up' ? 'ready' : 'not_ready',
    version: tollgateVersion,
    checks: { database, counters },
    ...(workers ? { workers } : {}),
  };
}

/** "redis is down (connect ECONNREFUSED ...)", naming each component that is down by its driver. */
export function describeNotReady(readiness: Readiness): string {
  return Object.values(readiness.checks)
    .filter((component) => component.status === 'down')
    .map((component) => `${component.driver} is down (${component.error ?? 'no answer'})`)
    .join('; ');
}
