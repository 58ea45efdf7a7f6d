/**
 * Rate limits and quotas: the types shared by the in-process and the Redis limiter.
 *
 * **Windows** (per second, minute, hour, day) are sliding windows kept as a ring of buckets: a
 * window of length P split into N buckets of P/N counts the calls of the current bucket and the N
 * before it. Those N + 1 buckets always cover the last P, so **a window never admits more than its
 * limit in any interval of length P**; the price is that a call can be refused up to one bucket
 * width (P/N) earlier than an exact sliding log would. Memory is N + 1 small fields per window and
 * subject, whatever the traffic.
 *
 * **Quotas** count calls over a billing period (calendar months from the team's anchor date, UTC);
 * a capped quota refuses the call that would exceed it, an uncapped one admits it as overage.
 *
 * A call is checked against every window and the quota at once, and counted in all of them only
 * when all admit it: a refused call consumes nothing.
 */
export interface WindowSpec {
  /** Names the window in answers and headers, e.g. `key-second`, `team-hour`. */
  id: string;
  /** Storage key of this window's subject, e.g. `k:<key id>:1s` (unique per subject and window). */
  key: string;
  limit: number;
  windowMs: number;
  /** Buckets the window is split into; windowMs must be a multiple of it. */
  buckets: number;
}

export interface QuotaSpec {
  id: string;
  /** Storage key of the period's counter, e.g. `q:<team id>:calls:<period start ISO>`. */
  key: string;
  limit: number;
  periodEnd: Date;
  /** When the period began (for the policy's window in the RateLimit-Policy header). */
  periodStart?: Date;
  /** Admit calls beyond the limit (billed as overage) instead of refusing them. */
  overage: boolean;
}

export interface LimitRequest {
  /**
   * The subject all these counters belong to (a team id). In Redis it is the hash tag of every key,
   * so one script can touch them all on Redis Cluster.
   */
  scope: string;
  windows: WindowSpec[];
  quota?: QuotaSpec | undefined;
  /** Units this call uses; 1 for a call. */
  cost?: number;
}

export interface WindowState {
  id: string;
  limit: number;
  windowMs: number;
  /** Calls still admitted now (after this call when it was admitted). */
  remaining: number;
  /** Milliseconds until the oldest counted bucket leaves the window and frees capacity. */
  resetMs: number;
}

export interface QuotaState {
  id: string;
  limit: number;
  /** Used in the period, this call included when admitted. */
  used: number;
  remaining: number;
  /** This call was admitted beyond the limit. */
  overage: boolean;
  resetMs: number;
}

export type LimitDecision =
  | { allowed: true; windows: WindowState[]; quota?: QuotaState }
  | {
      allowed: false;
      /** The window or quota that refused: `quota` when the period's quota is exhausted. */
      refusedBy: { kind: 'window' | 'quota'; id: string };
      retryAfterMs: number;
      windows: WindowState[];
      quota?: QuotaState;
    };

export interface Limiter {
  /** The decision; answered without a promise when it needs no I/O (a leased unit, say). */
  check(request: LimitRequest): LimitDecision | Promise<LimitDecision>;
  /**
   * Adds `calls` (`overage` of them beyond the quota) admitted elsewhere, in process while this
   * limiter could not be reached, to its counters (reconcile.ts). Limiters on Redis have it.
   */
  reconcile?(request: LimitRequest, calls: number, overage: number): Promise<void>;
  close(): Promise<void>;
}

/** The standard windows by name, with the bucket counts that bound their early-refusal error. */
export const windowShapes = {
  second: { windowMs: 1_000, buckets: 10 },
  minute: { windowMs: 60_000, buckets: 12 },
  hour: { windowMs: 3_600_000, buckets: 12 },
  day: { windowMs: 86_400_000, buckets: 24 },
} as const;

export type WindowName = keyof typeof windowShapes;

export function checkWindowSpec(window: WindowSpec): void {
  if (!Number.isSafeInteger(window.limit) || window.limit < 0) throw new Error(`window ${window.id}: bad limit`);
  if (!Number.isSafeInteger(window.buckets) || window.buckets < 1 || window.buckets > 100) {
    throw new Error(`window ${window.id}: buckets must be 1 to 100`);
  }
  if (window.windowMs % window.buckets !== 0) throw new Error(`window ${window.id}: windowMs must divide into buckets`);
}
