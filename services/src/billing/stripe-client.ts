import type Stripe from 'stripe';
import type { StripeConfig } from '../config/config.js';
import { tollgateVersion } from '../version.js';

export type StripeClient = Stripe;

export interface StripeClientOptions {
  /**
   * Retries of a request that failed on the network, or answered 409, 429 or 5xx, with the SDK's
   * exponential backoff. Safe because every POST carries an idempotency key. 2 unless set (tests
   * against the local server pass 0 to see failures at once).
   */
  maxNetworkRetries?: number;
  /** Longest wait for one request, in milliseconds. */
  timeoutMs?: number;
}

/** Two retries: what Stripe recommends for server integrations (docs.stripe.com/error-low-level). */
const defaultMaxNetworkRetries = 2;
const defaultTimeoutMs = 20_000;

/**
 * The Stripe SDK client for `config` (STRIPE_SECRET_KEY, aimed at STRIPE_API_BASE when set). The SDK
 * is imported here, lazily, so commands that never reach Stripe do not load it.
 */
export async function createStripeClient(config: StripeConfig, options: StripeClientOptions = {}): Promise<Stripe> {
  const { default: StripeSdk } = await import('stripe');
  return new StripeSdk(config.secretKey, {
    maxNetworkRetries: options.maxNetworkRetries ?? defaultMaxNetworkRetries,
    timeout: options.timeoutMs ?? defaultTimeoutMs,
    appInfo: { name: 'Tollgate', version: tollgateVersion },
    ...(config.apiBase ? stripeHostOptions(config.apiBase) : {}),
  });
}

/** The SDK takes a host, a port and a protocol rather than a URL. */
export function stripeHostOptions(apiBase: string): Pick<Stripe.StripeConfig, 'host' | 'port' | 'protocol'> {
  const url = new URL(apiBase);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port),
    protocol,
  };
}

const idempotencyKind = /^[a-z][a-z0-9-]{0,39}$/;

/**
 * The idempotency key of one Stripe call, derived from our own ids so a retried job sends the same
 * key and Stripe answers the first result instead of creating twice (docs.stripe.com/api/idempotent_requests):
 * `tollgate:<kind>:<our id>`, e.g. `idempotencyKey('invoice-item', line.id)` →
 * `tollgate:invoice-item:7c9e...`. Use one `kind` per kind of call, and an id that names exactly
 * one intended object (a second, deliberate object needs a new id, not a new key). Stripe keeps keys
 * for at least 24 hours and allows 255 characters.
 */
export function idempotencyKey(kind: string, ourId: string): string {
  if (!idempotencyKind.test(kind)) throw new Error(`idempotency key kind must be lowercase words with dashes: ${kind}`);
  if (!/^[A-Za-z0-9_:.-]{1,200}$/.test(ourId))
    throw new Error(`idempotency key id must be 1 to 200 id characters: ${ourId}`);
  return `tollgate:${kind}:${ourId}`;
}
