import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../errors/error-codes.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { errorBody } from './error-body.js';
import { newRequestId } from './request-id.js';

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

/**
 * Requests Node's parser refuses before any handler sees them (headers over the 16 KiB limit, a
 * malformed request line) still get the JSON error shape, with a request id, then the connection
 * closes. Node's default would be a bare status line.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || (socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
    socket.destroy();
    return;
  }
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
  const code: ErrorCode = tooLarge ? 'headers_too_large' : 'malformed_request';
  const message = tooLarge
    ? 'the request headers are larger than the limit of 16 KiB'
    : 'the request is not valid HTTP/1.1';
  const requestId = newRequestId();
  const body = JSON.stringify(errorBody(code, message, requestId));
  socket.end(
    `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
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
  server.on('clientError', answerClientError);
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
