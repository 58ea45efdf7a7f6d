import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The built CLI, run as a user runs it (`npm test` builds first). */
export const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A clean environment: nothing from the developer's shell leaks in (a DATABASE_URL there must not
 * send a test to a real database), and the config dir is the one given.
 */
export function cliEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' };
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = value;
  return env;
}

export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = cliEnv(),
  timeoutMs = 20_000,
  input?: string,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

export interface StartInfo {
  status: string;
  embedded: boolean;
  database: { driver: string; location: string };
  counters: { driver: string; location: string };
  api_url: string | null;
  gateway_url: string | null;
  worker: boolean;
  migrations: { applied: string[]; already_applied: number };
}

export interface StartedProcess {
  child: ChildProcess;
  /** The JSON document `start --json` prints once it is serving; rejects if the process exits first. */
  ready: Promise<StartInfo>;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

export function spawnStart(args: string[], env: NodeJS.ProcessEnv): StartedProcess {
  const child = spawn(process.execPath, [bin, 'start', '--json', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<StartInfo>((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      try {
        resolve(JSON.parse(stdout) as StartInfo);
      } catch {
        // Not the whole document yet.
      }
    });
    void exited.then((code) => reject(new Error(`tollgate start exited with ${code}: ${stdout}${stderr}`)));
  });
  return { child, ready, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Sends `signal` and waits for the process to end. */
export async function stop(started: StartedProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
  if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill(signal);
  return started.exited;
}

export async function eventually<T>(
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!accept(last)) {
    if (Date.now() > deadline)
      throw new Error(`condition not reached in ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await probe();
  }
  return last;
}

/** A loopback URL on which nothing listens: a port the system just handed out and took back. */
export async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}
