import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { TollgateError } from '@tollgate/services';
import type { UpstreamSet, UpstreamTarget } from './upstreams.js';

/** Headers that describe one connection, never forwarded (RFC 9110 section 7.6.1), plus Host. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
]);

export interface ForwardContext {
  requestId: string;
  clientIp: string;
  /** http or https, as the client reached the gateway. */
  protocol: string;
  /** Trust an X-Forwarded-For chain from a proxy in front of the gateway. */
  trustProxy: boolean;
  /** Drop the Authorization header: it carried the API key. */
  stripAuthorization: boolean;
}

/** Names listed in a Connection header are hop-by-hop too. */
function connectionTokens(headers: IncomingHttpHeaders): Set<string> | undefined {
  const value = headers.connection;
  if (!value) return undefined;
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()));
}

/** The request headers to send upstream: no hop-by-hop headers, no API key, X-Forwarded-* added. */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  context: ForwardContext,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || hopByHop.has(name) || listed?.has(name)) continue;
    if (name === 'x-api-key' || (name === 'authorization' && context.stripAuthorization)) continue;
    if (name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host') continue;
    if (name === 'x-request-id') continue;
    out[name] = value;
  }
  const earlier = context.trustProxy ? headers['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = earlier
    ? `${Array.isArray(earlier) ? earlier.join(', ') : earlier}, ${context.clientIp}`
    : context.clientIp;
  out['x-forwarded-proto'] = context.protocol;
  if (headers.host) out['x-forwarded-host'] = headers.host;
  out['x-request-id'] = context.requestId;
  return out;
}

/** The upstream's response headers to pass on: no hop-by-hop headers; our request id wins. */
export function downstreamResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  requestId: string,
): Record<string, string | string[]> {
  const listed =
    typeof headers.connection === 'string' ? connectionTokens({ connection: headers.connection }) : undefined;
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || hopByHop.has(name) || listed?.has(name) || name === 'x-request-id') continue;
    out[name] = value;
  }
  out['x-request-id'] = requestId;
  return out;
}

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** Nothing reached the upstream: safe to try another target even for a request with a body. */
const notConnectedCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function errorCode(error: unknown): string {
  const direct = (error as { code?: string }).code;
  const cause = (error as { cause?: { code?: string } }).cause?.code;
  return direct ?? cause ?? '';
}

export interface ProxyOptions {
  req: IncomingMessage;
  res: ServerResponse;
  upstreams: UpstreamSet;
  /** Path (already without the API's prefix) and query string. */
  pathAndQuery: string;
  timeoutMs: number;
  context: ForwardContext;
}

export interface ProxyOutcome {
  status: number;
  target: UpstreamTarget;
  /** The client went away before the answer was complete. */
  aborted: boolean;
}

/**
 * Forwards one request and streams the answer back through an undici pool (keep-alive). The
 * request body is streamed upstream as it arrives; the response is written to `res` as it comes.
 * Throws `upstream_timeout` (504) or `upstream_unavailable` (502) while nothing has been written;
 * once the answer has started, a failure can only cut the connection. A client that goes away
 * aborts the upstream request.
 */
export async function proxyRequest(options: ProxyOptions): Promise<ProxyOutcome> {
  const { req, res, upstreams, context } = options;
  const method = req.method ?? 'GET';
  const hasBody =
    req.headers['content-length'] !== undefined
      ? req.headers['content-length'] !== '0'
      : req.headers['transfer-encoding'] !== undefined;
  const headers = upstreamRequestHeaders(req.headers, context);
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.once('close', onClose);
  const attempts = Math.min(upstreams.targets.length, 2);
  try {
    for (let attempt = 1; ; attempt++) {
      const target = upstreams.pick();
      try {
        let status = 0;
        await target.pool.stream(
          {
            path: `${target.basePath}${options.pathAndQuery}`,
            method,
            headers,
            body: hasBody ? req : null,
            signal: abort.signal,
            headersTimeout: options.timeoutMs,
            bodyTimeout: options.timeoutMs,
          },
          ({ statusCode, headers: upstreamHeaders }) => {
            status = statusCode;
            res.writeHead(statusCode, downstreamResponseHeaders(upstreamHeaders, context.requestId));
            return res;
          },
        );
        upstreams.succeeded(target);
        return { status, target, aborted: false };
      } catch (error) {
        if (abort.signal.aborted) return { status: 499, target, aborted: true };
        const code = errorCode(error);
        upstreams.failed(target);
        if (res.headersSent) {
          // The answer is half sent: all that is left is to cut it, so the client sees it incomplete.
          res.destroy(error as Error);
          return { status: res.statusCode, target, aborted: false };
        }
        // Nothing reached that target, and there is no body that might be half read: try the next.
        const retry = attempt < attempts && notConnectedCodes.has(code) && !hasBody;
        if (retry) continue;
        if (timeoutCodes.has(code)) {
          throw new TollgateError('upstream_timeout', `the upstream did not answer within ${options.timeoutMs} ms`);
        }
        throw new TollgateError('upstream_unavailable', `the upstream could not be reached (${code || 'error'})`);
      }
    }
  } finally {
    res.off('close', onClose);
  }
}
