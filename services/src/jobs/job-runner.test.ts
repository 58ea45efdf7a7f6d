import { describe, expect, it } from 'vitest';
import { createLogger } from '../logging/logger.js';
import { startJobRunner } from './job-runner.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('startJobRunner', () => {
  it('runs each job at once, then again after its interval, never overlapping', async () => {
    let runs = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const runner = startJobRunner({
      logger: createLogger({ level: 'silent' }),
      jobs: [
        {
          name: 'tick',
          intervalMs: 20,
          async run() {
            concurrent++;
            maxConcurrent = Math.max(maxConcurrent, concurrent);
            runs++;
            await sleep(30);
            concurrent--;
          },
        },
      ],
    });
    await sleep(200);
    await runner.stop();
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(maxConcurrent).toBe(1);
  });

  it('logs a failed run and tries again at the next interval', async () => {
    const logged: string[] = [];
    let attempts = 0;
    const runner = startJobRunner({
      logger: createLogger({ level: 'error', destination: { write: (line: string) => logged.push(line) } }),
      jobs: [
        {
          name: 'flaky',
          intervalMs: 10,
          async run() {
            attempts++;
            if (attempts === 1) throw new Error('first run fails');
          },
        },
      ],
    });
    await sleep(100);
    await runner.stop();
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(logged.join('')).toContain('first run fails');
    expect(logged.join('')).toContain('"job":"flaky"');
  });

  it('waits on stop for the run in progress, aborts its signal and schedules no more', async () => {
    let finished = false;
    let sawAbort = false;
    let runs = 0;
    const runner = startJobRunner({
      logger: createLogger({ level: 'silent' }),
      jobs: [
        {
          name: 'slow',
          intervalMs: 1,
          async run(signal) {
            runs++;
            await sleep(100);
            sawAbort = signal.aborted;
            finished = true;
          },
        },
      ],
    });
    await sleep(20);
    await runner.stop();
    expect(finished).toBe(true);
    expect(sawAbort).toBe(true);
    const runsAtStop = runs;
    await sleep(50);
    expect(runs).toBe(runsAtStop);
  });
});
