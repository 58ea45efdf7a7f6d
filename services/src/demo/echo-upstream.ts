import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen, type RunningServer } from '../http/http-server.js';

/** Headers the echo never repeats, should a client send them straight to it (the gateway strips the key). */
const withheldHeaders = new Set(['authorization', 'proxy-authorization', 'cookie', 'x-api-key']);

/** What the echo answers: the request it got, as the upstream of an API sees it. */
export interface EchoAnswer {
  echo: true;
  /** A greeting from `?name=`, so the first call says something. */
  message: string;
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string | string[]>;
  /** Bytes of request body received. */
  body_bytes: number;
}

function answerFor(request: IncomingMessage, bodyBytes: number): EchoAnswer {
  const url = new URL(request.url ?? '/', 'http://echo.invalid');
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    query[name] = values.length === 1 ? (values[0] as string) : values;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && !withheldHeaders.has(name)) headers[name] = value;
  }
  const name = url.searchParams.get('name');
  return {
    echo: true,
    message: `Hello, ${name ?? 'world'}! This is the Tollgate demo's echo upstream.`,
    method: request.method ?? 'GET',
    path: url.pathname,
    query,
    headers,
    body_bytes: bodyBytes,
  };
}

function handle(request: IncomingMessage, response: ServerResponse): void {
  let bodyBytes = 0;
  request.on('data', (chunk: Buffer) => {
    bodyBytes += chunk.length;
  });
  request.on('end', () => {
    const body = JSON.stringify(answerFor(request, bodyBytes));
    response.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  });
  request.on('error', () => response.destroy());
}

/**
 * The demo's upstream (`tollgate start --demo`): an HTTP server on loopback that answers every
 * request with JSON describing it. Port 0 takes a free port; close() stops it.
 */
export function startEchoUpstream(options: { host?: string; port?: number } = {}): Promise<RunningServer> {
  return listen(handle, { host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
}
