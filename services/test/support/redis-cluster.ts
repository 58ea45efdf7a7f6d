import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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

export interface TestRedisCluster {
  /** The masters' ports, on 127.0.0.1. */
  ports: number[];
  nodes: { host: string; port: number }[];
  /** Kills every node at once, as a cluster that goes away. */
  kill(): void;
  /** Kills the nodes and removes their folder. */
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of three masters and no replicas, made of local redis-server processes on
 * free ports (it needs the Redis server binaries: the TEST_REDIS_URL run of CI installs them).
 */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-cluster-'));
  const processes: ChildProcess[] = [];
  const ports = [await freePort(), await freePort(), await freePort()];
  const kill = () => {
    for (const node of processes) node.kill('SIGKILL');
  };
  const stop = async () => {
    kill();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      processes.push(
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
  } catch (error) {
    await stop();
    throw error;
  }
  return { ports, nodes: ports.map((port) => ({ host: '127.0.0.1', port })), kill, stop };
}
