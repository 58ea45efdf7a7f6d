import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Transform, type TransformCallback, type Writable } from 'node:stream';
import { type TeamPolicy, TollgateError } from '@tollgate/services';
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

/**
 * Request headers never forwarded as the client sent them: hop-by-hop ones, the API key, and those
 * the gateway sets itself (X-Forwarded-*, X-Request-Id, and the plan headers, which a client must
 * never be able to claim).
 */
const notForwarded = new Set([
  ...hopByHop,
  'x-api-key',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
  'tollgate-plan',
  'tollgate-entitlements',
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
  /**
   * The policy of the key's team (team-policy.ts): its plan slug and entitlements header go
   * upstream as Tollgate-Plan and Tollgate-Entitlements. None: neither is sent.
   */
  policy?: Pick<TeamPolicy, 'planSlug' | 'entitlementsHeader'> | undefined;
}

/** Names listed in a Connection header are hop-by-hop too. */
function connectionTokens(headers: IncomingHttpHeaders): Set<string> | undefined {
  const value = headers.connection;
  if (!value) return undefined;
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()));
}

/**
 * The request headers to send upstream: no hop-by-hop headers, no API key, X-Forwarded-* added,
 * then the plugins' headers (`added`, replacing a client's header of the same name), then the plan
 * headers of the key's team, which nothing else can set.
 */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  context: ForwardContext,
  added?: Record<string, string>,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || notForwarded.has(name) || listed?.has(name)) continue;
    if (name === 'authorization' && context.stripAuthorization) continue;
    out[name] = value;
  }
  const earlier = context.trustProxy ? headers['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = earlier
    ? `${Array.isArray(earlier) ? earlier.join(', ') : earlier}, ${context.clientIp}`
    : context.clientIp;
  out['x-forwarded-proto'] = context.protocol;
  if (headers.host) out['x-forwarded-host'] = headers.host;
  out['x-request-id'] = context.requestId;
  // Incoming names are lower case: a plugin's `X-Foo` replaces the client's `x-foo` rather than joining it.
  if (added) for (const name in added) out[name.toLowerCase()] = added[name] as string;
  const policy = context.policy;
  if (policy) {
    out['tollgate-plan'] = policy.planSlug;
    // Sent even when empty: an empty Dictionary says "no entitlements", where no header would not.
    out['tollgate-entitlements'] = policy.entitlementsHeader;
  }
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

/**
 * Aborts one upstream request: the lightest signal undici accepts (it takes an EventEmitter-like
 * object with `on`, `once` and `removeListener`), one listener, no EventEmitter or AbortController.
 */
export class AbortHook {
  aborted = false;
  private listener: (() => void) | undefined;

  on(_event: 'abort', listener: () => void): this {
    this.listener = listener;
    return this;
  }

  once(event: 'abort', listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(_event: 'abort', listener: () => void): this {
    if (this.listener === listener) this.listener = undefined;
    return this;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}

export interface ProxyOptions {
  req: IncomingMessage;
  res: ServerResponse;
  upstreams: UpstreamSet;
  /** Path (already without the API's prefix) and query string. */
  pathAndQuery: string;
  timeoutMs: number;
  context: ForwardContext;
  /** Headers to add to (or replace on) the request sent upstream (plugins' request hooks); not the plan headers. */
  extraHeaders?: Record<string, string> | undefined;
  /** Refuse a larger request body with 413 `payload_too_large`, counted as it streams. */
  maxBodyBytes?: number | undefined;
  /** Filled in as the call goes (bytes so far, the target), for whoever observes the answer's end. */
  meter?: { requestBytes?: number; responseBytes?: number; upstream?: string } | undefined;
  /** Last word on the answer's status line headers (RateLimit headers, plugins' response hooks). */
  decorate?: ((status: number, headers: Record<string, string | string[]>) => void) | undefined;
  /**
   * Aborted by the caller when the client goes away (it watches `res` itself). Without it the proxy
   * watches `res` for that.
   */
  abort?: AbortHook | undefined;
}

export interface ProxyOutcome {
  status: number;
  target: UpstreamTarget;
  /** The client went away before the answer was complete. */
  aborted: boolean;
  /** Bytes of the request body sent upstream and of the answer's body sent back. */
  requestBytes: number;
  responseBytes: number;
}

/** Counts a body as it streams, and fails it once it passes `limit`. */
class CountingStream extends Transform {
  bytes = 0;
  exceeded = false;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.exceeded = true;
      callback(
        new TollgateError('payload_too_large', `the request body is larger than the limit of ${this.limit} bytes`),
      );
      return;
    }
    callback(null, chunk);
  }
}

function declaredLength(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
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
  const declared = declaredLength(req.headers['content-length']);
  const hasBody = declared !== undefined ? declared > 0 : req.headers['transfer-encoding'] !== undefined;
  const headers = upstreamRequestHeaders(req.headers, context, options.extraHeaders);
  // A body is counted as it streams when its length is not declared or a limit applies.
  const counter =
    hasBody && (declared === undefined || options.maxBodyBytes !== undefined)
      ? new CountingStream(options.maxBodyBytes ?? Number.POSITIVE_INFINITY)
      : undefined;
  if (counter) req.pipe(counter);
  // undici takes an EventEmitter-like signal: far cheaper per call than an AbortController.
  let abort = options.abort;
  let onClose: (() => void) | undefined;
  if (!abort) {
    const own = new AbortHook();
    abort = own;
    onClose = () => {
      if (!res.writableFinished) own.abort();
    };
    res.once('close', onClose);
  }
  let responseBytes = 0;
  const requestBytes = () => counter?.bytes ?? declared ?? 0;
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
            body: hasBody ? (counter ?? req) : null,
            signal: abort,
            headersTimeout: options.timeoutMs,
            bodyTimeout: options.timeoutMs,
          },
          ({ statusCode, headers: upstreamHeaders }) => {
            status = statusCode;
            if (options.meter) {
              options.meter.upstream = target.origin;
              options.meter.requestBytes = requestBytes();
            }
            const out = downstreamResponseHeaders(upstreamHeaders, context.requestId);
            options.decorate?.(statusCode, out);
            res.writeHead(statusCode, out);
            const length = declaredLength(upstreamHeaders['content-length']);
            if (length !== undefined) {
              responseBytes = length;
              if (options.meter) options.meter.responseBytes = length;
              return res;
            }
            const meter = new PassThrough();
            meter.on('data', (chunk: Buffer) => {
              responseBytes += chunk.length;
              if (options.meter) options.meter.responseBytes = responseBytes;
            });
            meter.pipe(res);
            return meter as Writable;
          },
        );
        upstreams.succeeded(target);
        return { status, target, aborted: false, requestBytes: requestBytes(), responseBytes };
      } catch (error) {
        if (abort.aborted) return { status: 499, target, aborted: true, requestBytes: requestBytes(), responseBytes };
        if (counter?.exceeded) {
          if (res.headersSent) {
            res.destroy();
            return { status: res.statusCode, target, aborted: false, requestBytes: requestBytes(), responseBytes };
          }
          // The rest of the body is not wanted: close the connection after answering.
          res.setHeader('Connection', 'close');
          throw new TollgateError(
            'payload_too_large',
            `the request body is larger than the limit of ${options.maxBodyBytes} bytes`,
          );
        }
        const code = errorCode(error);
        upstreams.failed(target);
        if (res.headersSent) {
          // The answer is half sent: all that is left is to cut it, so the client sees it incomplete.
          res.destroy(error as Error);
          return { status: res.statusCode, target, aborted: false, requestBytes: requestBytes(), responseBytes };
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
    if (onClose) res.off('close', onClose);
  }
}
