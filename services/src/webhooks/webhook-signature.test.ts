import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newWebhookSecret, signWebhook, verifyWebhookSignature } from './webhook-signature.js';

describe('webhook signatures', () => {
  const secret = newWebhookSecret();
  const body = '{"id":"e1","type":"ping"}';
  const now = new Date('2025-03-01T12:00:00Z');
  const t = Math.floor(now.getTime() / 1000);

  it('is the hex HMAC-SHA256 of "<t>.<body>" under the secret text, as docs/webhooks.md says', () => {
    const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(signWebhook(secret, body, t)).toBe(`t=${t},v1=${expected}`);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
  });

  it('verifies the right body and refuses another body, another secret and a stale timestamp', () => {
    const header = signWebhook(secret, body, t);
    expect(verifyWebhookSignature(secret, body, header, { now })).toBe(true);
    expect(verifyWebhookSignature(secret, `${body} `, header, { now })).toBe(false);
    expect(verifyWebhookSignature(newWebhookSecret(), body, header, { now })).toBe(false);
    expect(verifyWebhookSignature(secret, body, header, { now: new Date(now.getTime() + 301_000) })).toBe(false);
    expect(verifyWebhookSignature(secret, body, 'v1=abc', { now })).toBe(false);
  });
});
