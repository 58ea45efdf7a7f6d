import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterStore } from '../src/counters/counter-store.js';
import { openCounterStore } from '../src/counters/open-counter-store.js';
import { silentLogger, testRedisUrl, uniqueKey } from './support/backends.js';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPong(port: number): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const answer = await run('redis-cli', ['-p', String(port), 'ping']).then(
      (result) => result.stdout.trim(),
      () => '',
    );
    if (answer === 'PONG') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`redis-server on ${port} did not start`);
}

// A real three-node Redis Cluster made of local redis-server processes. It runs where the Redis
// server binaries are (the TEST_REDIS_URL run in CI installs them); the run's banner lists it as
// skipped otherwise.
describe.skipIf(!testRedisUrl)('counter store on Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  const nodes: ChildProcess[] = [];
  let dir: string;
  let ports: number[];
  let counters: CounterStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-cluster-'));
    ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      nodes.push(
        spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--dir',
            dir,
            '--save',
            '',
            '--appendonly',
            'no',
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    await Promise.all(ports.map(waitForPong));
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (let attempt = 0; attempt < 50; attempt++) {
      const info = await run('redis-cli', ['-p', String(ports[0]), 'cluster', 'info']);
      if (info.stdout.includes('cluster_state:ok')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    counters = await openCounterStore(
      { driver: 'redis-cluster', nodes: ports.map((port) => ({ host: '127.0.0.1', port })) },
      { logger: silentLogger() },
    );
  }, 60_000);

  afterAll(async () => {
    await counters?.close();
    for (const node of nodes) node.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a health check and counts across the cluster’s slots', async () => {
    expect(counters.driver).toBe('redis-cluster');
    await counters.ping();
    // Enough distinct keys to land on every node's slots.
    const keys = Array.from({ length: 30 }, (_, index) => uniqueKey(`cluster-${index}`));
    await Promise.all(keys.map((key, index) => counters.increment(key, index + 1, 60_000)));
    await Promise.all(keys.map((key) => counters.increment(key, 1, 60_000)));
    expect(await Promise.all(keys.map((key) => counters.get(key)))).toEqual(keys.map((_, index) => index + 2));
  });

  it('fails its health check quickly once the cluster is gone', async () => {
    for (const node of nodes) node.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    await expect(counters.ping()).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(3_000);
  });
});
