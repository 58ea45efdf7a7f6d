import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TollgateError } from '../errors/tollgate-error.js';

export interface RunningServer {
  server: Server;
  /** The URL clients reach it on, with the port actually bound (useful with port 0). */
  url: string;
  port: number;
  /**
   * Stops accepting connections, lets in-flight requests finish, closes keep-alive connections as
   * they go idle, and after `timeoutMs` cuts whatever is left. Resolves when every connection is closed.
   */
  close(timeoutMs: number): Promise<void>;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Listen failures a user can fix, and which setting fixes each. */
const listenProblems: Record<string, { message: string; fix: 'port' | 'host' }> = {
  EADDRINUSE: { message: 'the port is already in use', fix: 'port' },
  EACCES: { message: 'the port needs privileges', fix: 'port' },
  EADDRNOTAVAIL: { message: 'the host is not an address of this machine', fix: 'host' },
  ENOTFOUND: { message: 'the host name does not resolve', fix: 'host' },
  EAI_AGAIN: { message: 'the host name could not be resolved', fix: 'host' },
};

export interface ListenOptions {
  host: string;
  port: number;
  /** The setting that chose the port, named in the error when it is taken. */
  portSetting?: string;
}

export async function listen(handler: RequestListener, options: ListenOptions): Promise<RunningServer> {
  const active = new Set<ServerResponse>();
  let draining = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    active.add(res);
    res.on('close', () => active.delete(res));
    // While draining, tell keep-alive clients to go away after this response.
    if (draining) res.setHeader('Connection', 'close');
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const problem = listenProblems[error.code ?? ''];
      if (!problem) return reject(error);
      const hint =
        problem.fix === 'port'
          ? `stop whatever holds it, or choose another port${options.portSetting ? ` with ${options.portSetting}` : ''} (0 picks a free one)`
          : 'set TOLLGATE_HOST to an address of this machine, such as 127.0.0.1 or 0.0.0.0';
      reject(
        new TollgateError('listen_failed', `cannot listen on ${options.host}:${options.port}: ${problem.message}`, {
          hint,
          cause: error,
        }),
      );
    });
    server.listen(options.port, options.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    url: `http://${urlHost(options.host)}:${port}`,
    close(timeoutMs) {
      closing ??= new Promise<void>((resolve) => {
        draining = true;
        for (const res of active) if (!res.headersSent) res.setHeader('Connection', 'close');
        const sweeper = setInterval(() => server.closeIdleConnections(), 50);
        const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
        server.close(() => {
          clearInterval(sweeper);
          clearTimeout(deadline);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
