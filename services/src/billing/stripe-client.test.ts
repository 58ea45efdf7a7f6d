import { describe, expect, it } from 'vitest';
import { createStripeClient, idempotencyKey, stripeHostOptions } from './stripe-client.js';

describe('idempotencyKey', () => {
  it('is derived from our ids only, so a retry sends the same key', () => {
    const id = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
    expect(idempotencyKey('invoice-item', id)).toBe(`tollgate:invoice-item:${id}`);
    expect(idempotencyKey('invoice-item', id)).toBe(idempotencyKey('invoice-item', id));
    expect(idempotencyKey('customer', id)).not.toBe(idempotencyKey('invoice-item', id));
  });

  it('refuses a kind or an id that could collide or run past Stripe’s 255 characters', () => {
    expect(() => idempotencyKey('Invoice Item', 'x')).toThrow(/kind/);
    expect(() => idempotencyKey('invoice-item', '')).toThrow(/id/);
    expect(() => idempotencyKey('invoice-item', 'a'.repeat(201))).toThrow(/id/);
  });
});

describe('createStripeClient', () => {
  it('points the SDK at STRIPE_API_BASE with its host, port and protocol', async () => {
    expect(stripeHostOptions('http://127.0.0.1:12111')).toEqual({ host: '127.0.0.1', port: 12111, protocol: 'http' });
    expect(stripeHostOptions('https://stripe-proxy.internal')).toEqual({
      host: 'stripe-proxy.internal',
      port: 443,
      protocol: 'https',
    });
    expect(stripeHostOptions('http://[::1]:8080')).toMatchObject({ host: '::1', port: 8080 });
    const client = await createStripeClient({
      secretKey: 'sk_test_123456789',
      webhookSecret: 'whsec_x',
      apiBase: undefined,
    });
    expect(client.getMaxNetworkRetries()).toBeGreaterThan(0);
  });
});
