import { describe, expect, it } from 'vitest';
import { httpStatusFor, isErrorCode } from './error-codes.js';
import { TollgateError } from './tollgate-error.js';

describe('error codes', () => {
  it('maps the gateway-owned codes to the statuses ARCHITECTURE.md fixes', () => {
    expect(httpStatusFor('key_revoked')).toBe(401);
    expect(httpStatusFor('forbidden')).toBe(403);
    expect(httpStatusFor('route_not_found')).toBe(404);
    expect(httpStatusFor('rate_limited')).toBe(429);
    expect(httpStatusFor('quota_exhausted')).toBe(429);
    expect(httpStatusFor('payment_required')).toBe(402);
    expect(httpStatusFor('upstream_unavailable')).toBe(502);
    expect(httpStatusFor('upstream_timeout')).toBe(504);
  });

  it('recognises only registered codes', () => {
    expect(isErrorCode('rate_limited')).toBe(true);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });

  it('carries its status, hint and details', () => {
    const error = new TollgateError('payload_too_large', 'too big', { hint: 'send less', details: { limit: 1 } });
    expect(error.status).toBe(413);
    expect(error.hint).toBe('send less');
    expect(error.details).toEqual({ limit: 1 });
  });
});
