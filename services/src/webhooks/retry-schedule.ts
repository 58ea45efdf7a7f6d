/** The wait after the first failed attempt; each later failure doubles it. */
export const firstRetryDelayMs = 30_000;
/** The longest wait between two attempts. */
export const maxRetryDelayMs = 6 * 3_600_000;

/**
 * How long to wait after the `failedAttempts`-th failed attempt: 30 s, 1 m, 2 m, 4 m, ... doubling up
 * to 6 h, then every 6 h until the delivery's window (3 days) closes.
 */
export function retryDelayMs(failedAttempts: number): number {
  const doublings = Math.max(0, failedAttempts - 1);
  // 2^10 * 30 s is already past the cap; stop there so the number never grows without bound.
  return Math.min(firstRetryDelayMs * 2 ** Math.min(doublings, 10), maxRetryDelayMs);
}

/** When to try next after a failure at `now`, or undefined when that would be after `giveUpAt`. */
export function nextAttemptAt(failedAttempts: number, now: Date, giveUpAt: Date): Date | undefined {
  const next = new Date(now.getTime() + retryDelayMs(failedAttempts));
  return next.getTime() > giveUpAt.getTime() ? undefined : next;
}
