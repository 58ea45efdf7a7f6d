import type { PluginDefinition } from '../index.js';

export interface RequestSizeLimitConfig {
  maxBytes: number;
}

/**
 * Refuses request bodies over `max_bytes` with 413 `payload_too_large`: at once when Content-Length
 * says so, else (chunked) as soon as the streamed body crosses the limit.
 */
export const requestSizeLimitPlugin: PluginDefinition<RequestSizeLimitConfig> = {
  name: 'request-size-limit',
  description: 'Refuses request bodies larger than max_bytes (413), declared or streamed.',
  parseConfig(raw) {
    const input = (raw ?? {}) as Record<string, unknown>;
    const max = input.max_bytes;
    if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 0) {
      return { ok: false, errors: ['max_bytes: a whole number of bytes, 0 or more'] };
    }
    return { ok: true, config: { maxBytes: max } };
  },
  create(config) {
    return {
      name: 'request-size-limit',
      onRequest(request) {
        const length = request.headers['content-length'];
        const declared = Number(Array.isArray(length) ? length[0] : length);
        if (Number.isFinite(declared) && declared > config.maxBytes) {
          return {
            action: 'respond',
            status: 413,
            headers: { 'content-type': 'application/json', connection: 'close' },
            body: JSON.stringify({
              error: {
                code: 'payload_too_large',
                message: `the request body is larger than the limit of ${config.maxBytes} bytes`,
                request_id: request.requestId,
              },
            }),
          };
        }
        return { action: 'continue', maxBodyBytes: config.maxBytes };
      },
    };
  },
};
