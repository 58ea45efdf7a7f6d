import type { Logger } from '../logging/logger.js';

export interface Job {
  name: string;
  /** Pause between the end of one run and the start of the next, in milliseconds. */
  intervalMs: number;
  /** `signal` aborts when the runner stops; a long job should check it. */
  run(signal: AbortSignal): Promise<void>;
}

export interface JobRunner {
  /** Stops scheduling, aborts the signal and waits for runs in progress to end. */
  stop(): Promise<void>;
}

/**
 * The background-job loop: each job runs right away, then again `intervalMs` after each run ends,
 * so a slow run never overlaps the next. A failed run is logged and retried at the next interval.
 */
export function startJobRunner(options: { jobs: readonly Job[]; logger: Logger }): JobRunner {
  const controller = new AbortController();
  const running = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();

  const schedule = (job: Job, delayMs: number) => {
    if (controller.signal.aborted) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      const run = job
        .run(controller.signal)
        .catch((error: unknown) => {
          if (!controller.signal.aborted) options.logger.error({ err: error, job: job.name }, 'background job failed');
        })
        .finally(() => {
          running.delete(run);
          schedule(job, job.intervalMs);
        });
      running.add(run);
    }, delayMs);
    timers.add(timer);
  };

  for (const job of options.jobs) schedule(job, 0);
  options.logger.debug({ jobs: options.jobs.map((job) => job.name) }, 'background jobs started');

  return {
    async stop() {
      controller.abort();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...running]);
    },
  };
}
