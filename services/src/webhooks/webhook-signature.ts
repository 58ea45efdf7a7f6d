import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * `Tollgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the scheme Stripe uses for its own
 * webhooks (https://docs.stripe.com/webhooks#verify-manually): the HMAC key is the endpoint's
 * secret as text (`whsec_...`, prefix included), the message is `<t>.<raw body>`. The timestamp is
 * signed, so a receiver that refuses old timestamps refuses replayed captures.
 */
export const signatureHeader = 'tollgate-signature';

/** A new endpoint secret: `whsec_` and 32 random bytes in base64url. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function signaturePayload(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** The header's value for `body` sent at `timestamp` (unix seconds). */
export function signWebhook(secret: string, body: string, timestamp: number): string {
  return `t=${timestamp},v1=${signaturePayload(secret, timestamp, body)}`;
}

/**
 * What a receiver does (docs/webhooks.md shows the same in a few lines): true when a `v1` signature
 * in the header matches and `t` is within `toleranceSeconds` of `now`.
 */
export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string,
  options: { toleranceSeconds?: number; now?: Date } = {},
): boolean {
  const parts = header.split(',').map((part) => part.trim().split('='));
  const timestamp = Number(parts.find(([name]) => name === 't')?.[1]);
  if (!Number.isInteger(timestamp)) return false;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signaturePayload(secret, timestamp, body), 'hex');
  return parts.some(([name, value]) => {
    if (name !== 'v1' || !value || !/^[0-9a-f]{64}$/.test(value)) return false;
    return timingSafeEqual(Buffer.from(value, 'hex'), expected);
  });
}
