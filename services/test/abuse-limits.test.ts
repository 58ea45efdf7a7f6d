import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterStore } from '../src/counters/counter-store.js';
import { TollgateError } from '../src/errors/tollgate-error.js';
import {
  abuseLimits,
  clearLoginFailures,
  guardAccountRequest,
  guardLogin,
  recordLoginFailure,
} from '../src/identity/abuse-limits.js';
import { expectedCounterDriver, openTestCounters } from './support/backends.js';

let counters: CounterStore;
let dispose: () => Promise<void>;
beforeAll(async () => {
  const opened = await openTestCounters();
  counters = opened.value;
  dispose = opened.dispose;
});
afterAll(() => dispose());

const unique = () => randomBytes(6).toString('hex');

async function refusal(promise: Promise<unknown>): Promise<TollgateError | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof TollgateError ? error : Promise.reject(error)),
  );
}

describe('abuse limits without a counter store', () => {
  it('refuse with limiter_unavailable instead of letting guesses through', async () => {
    const broken: CounterStore = {
      driver: 'redis',
      location: 'unreachable',
      increment: () => Promise.reject(new Error("Stream isn't writeable")),
      get: () => Promise.reject(new Error('down')),
      remainingMs: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
      ping: () => Promise.reject(new Error('down')),
      close: async () => {},
    };
    const refused = await refusal(guardLogin(broken, { ip: '192.0.2.1', email: 'a@example.com' }));
    expect(refused?.code).toBe('limiter_unavailable');
    expect(refused?.status).toBe(503);
  });
});

describe(`abuse limits (${expectedCounterDriver})`, () => {
  it('lock an account after five failures in a row, for longer each time, and unlock on success', async () => {
    const email = `victim.${unique()}@example.com`;
    const ip = `198.51.100.${Math.floor(Math.random() * 200)}`;
    for (let failure = 0; failure < abuseLimits.failuresBeforeLock - 1; failure++) {
      expect(await refusal(guardLogin(counters, { ip, email }))).toBeUndefined();
      await recordLoginFailure(counters, { email });
    }
    expect(await refusal(guardLogin(counters, { ip, email }))).toBeUndefined();
    await recordLoginFailure(counters, { email });
    const locked = await refusal(guardLogin(counters, { ip: '203.0.113.9', email: email.toUpperCase() }));
    expect(locked?.code).toBe('rate_limited');
    expect(locked?.details?.retry_after_seconds).toBe(60);
    await recordLoginFailure(counters, { email });
    expect((await refusal(guardLogin(counters, { ip, email })))?.details?.retry_after_seconds).toBe(120);
    await clearLoginFailures(counters, { email });
    expect(await refusal(guardLogin(counters, { ip, email }))).toBeUndefined();
  });

  it('limit login attempts per address, whatever the email', async () => {
    const ip = `192.0.2.${unique()}`;
    for (let attempt = 0; attempt < abuseLimits.loginPerIp.limit; attempt++) {
      await guardLogin(counters, { ip, email: `${unique()}@example.com` });
    }
    const refused = await refusal(guardLogin(counters, { ip, email: `${unique()}@example.com` }));
    expect(refused?.code).toBe('rate_limited');
    expect(refused?.message).toBe('too many login attempts from this address');
  });

  it('limit sign-ups and reset requests per address', async () => {
    const ip = `2001:db8::${unique().slice(0, 4)}`;
    for (let request = 0; request < abuseLimits.accountRequestsPerIp.limit; request++)
      await guardAccountRequest(counters, { ip });
    expect((await refusal(guardAccountRequest(counters, { ip })))?.code).toBe('rate_limited');
  });
});
