import { createHash } from 'node:crypto';
import type { CounterStore } from '../counters/counter-store.js';
import { TollgateError } from '../errors/tollgate-error.js';

/**
 * Brakes on guessing passwords and on mass sign-ups, kept in the counter store (Redis when
 * configured, so every API process shares them). Counters are keyed by a hash of the email, never
 * the email itself, and they apply to unknown addresses exactly as to real ones, so the answers do
 * not tell which emails have accounts.
 */
export const abuseLimits = {
  /** Login attempts per client address. */
  loginPerIp: { limit: 30, windowMs: 60_000 },
  /** Failed logins per email before the account is locked... */
  failuresBeforeLock: 5,
  /** ...for one minute, doubling with each further failure, up to an hour. */
  firstLockMs: 60_000,
  longestLockMs: 60 * 60_000,
  /** Failures are forgotten an hour after the last one (or at the next success). */
  failureMemoryMs: 60 * 60_000,
  /** Sign-ups and password-reset requests per client address. */
  accountRequestsPerIp: { limit: 10, windowMs: 60 * 60_000 },
} as const;

const digest = (value: string) => createHash('sha256').update(value.trim().toLowerCase()).digest('hex').slice(0, 32);
const keys = {
  loginIp: (ip: string) => `abuse:login-ip:${ip}`,
  failures: (email: string) => `abuse:login-failures:${digest(email)}`,
  lock: (email: string) => `abuse:login-lock:${digest(email)}`,
  accountIp: (ip: string) => `abuse:account-ip:${ip}`,
};

/**
 * Runs counter operations; a counter store that cannot answer refuses the request with 503
 * `limiter_unavailable` (fail closed: sign-in is not left unbraked while Redis is away).
 */
async function withCounters<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof TollgateError) throw error;
    throw new TollgateError('limiter_unavailable', 'the rate limiter cannot be reached; try again shortly', {
      cause: error,
    });
  }
}

function tooMany(message: string, retryAfterMs: number): TollgateError {
  return new TollgateError('rate_limited', message, {
    details: { retry_after_seconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) },
    hint: 'wait and try again',
  });
}

/** Call before any login attempt (a password, or a start at a login provider): the per-address rate. */
export async function guardLoginRate(counters: CounterStore, input: { ip: string }): Promise<void> {
  return withCounters(async () => {
    const { limit, windowMs } = abuseLimits.loginPerIp;
    const attempts = await counters.increment(keys.loginIp(input.ip), 1, windowMs);
    if (attempts > limit) {
      throw tooMany('too many login attempts from this address', await counters.remainingMs(keys.loginIp(input.ip)));
    }
  });
}

/** Call before checking a password: refuses while the address is over its rate or the account is locked. */
export async function guardLogin(counters: CounterStore, input: { ip: string; email: string }): Promise<void> {
  await guardLoginRate(counters, input);
  return withCounters(async () => {
    const lockedFor = await counters.remainingMs(keys.lock(input.email));
    if (lockedFor > 0) throw tooMany('too many failed logins for this account; it is locked for a while', lockedFor);
  });
}

/** Counts a failed login; from the fifth in a row the account is locked, a little longer each time. */
export async function recordLoginFailure(counters: CounterStore, input: { email: string }): Promise<void> {
  return withCounters(async () => {
    const failures = await counters.increment(keys.failures(input.email), 1, abuseLimits.failureMemoryMs);
    if (failures < abuseLimits.failuresBeforeLock) return;
    const lockMs = Math.min(
      abuseLimits.firstLockMs * 2 ** (failures - abuseLimits.failuresBeforeLock),
      abuseLimits.longestLockMs,
    );
    await counters.delete(keys.lock(input.email));
    await counters.increment(keys.lock(input.email), 1, lockMs);
  });
}

/** A successful login forgets the failures. */
export async function clearLoginFailures(counters: CounterStore, input: { email: string }): Promise<void> {
  return withCounters(async () => {
    await Promise.all([counters.delete(keys.failures(input.email)), counters.delete(keys.lock(input.email))]);
  });
}

/** Call before a sign-up or a password-reset request. */
export async function guardAccountRequest(counters: CounterStore, input: { ip: string }): Promise<void> {
  return withCounters(async () => {
    const { limit, windowMs } = abuseLimits.accountRequestsPerIp;
    const count = await counters.increment(keys.accountIp(input.ip), 1, windowMs);
    if (count > limit) {
      throw tooMany(
        'too many account requests from this address',
        await counters.remainingMs(keys.accountIp(input.ip)),
      );
    }
  });
}
