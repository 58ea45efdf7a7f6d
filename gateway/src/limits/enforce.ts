import type { TeamPolicy } from '@tollgate/services';
import { billingPeriod } from './billing-period.js';
import {
  type LimitDecision,
  type LimitRequest,
  type QuotaSpec,
  type WindowName,
  type WindowSpec,
  windowShapes,
} from './limiter.js';

/** Per-key limits set on a key (they narrow, never widen, the team's plan). */
export interface KeyLimits {
  per_second?: number | null;
  per_minute?: number | null;
  per_hour?: number | null;
  per_day?: number | null;
}

const windowNames: WindowName[] = ['second', 'minute', 'hour', 'day'];

function spec(subject: 'key' | 'team', id: string, name: WindowName, limit: number): WindowSpec {
  const shape = windowShapes[name];
  return {
    id: `${subject}-${name}`,
    key: `${subject}:${id}:${name}`,
    limit,
    windowMs: shape.windowMs,
    buckets: shape.buckets,
  };
}

/**
 * Every window and the quota one call is checked against: the key's own limits, the team's plan
 * limits, and the plan's monthly call quota in the team's current billing period.
 */
interface Prepared {
  keyLimits: KeyLimits | null | undefined;
  windows: WindowSpec[];
  period?: { start: Date; end: Date; key: string };
}

/** Per policy object (replaced when the team's policy reloads) and key: the specs do not change per call. */
const prepared = new WeakMap<TeamPolicy, Map<string, Prepared>>();

export function limitRequestFor(
  input: { policy: TeamPolicy; keyId: string; keyLimits?: KeyLimits | null | undefined },
  now: Date,
): LimitRequest {
  let byKey = prepared.get(input.policy);
  if (!byKey) {
    byKey = new Map();
    prepared.set(input.policy, byKey);
  }
  let entry = byKey.get(input.keyId);
  if (!entry || entry.keyLimits !== input.keyLimits) {
    entry = { keyLimits: input.keyLimits, windows: buildWindows(input) };
    if (byKey.size > 10_000) byKey.clear();
    byKey.set(input.keyId, entry);
  }
  let quota: QuotaSpec | undefined;
  if (input.policy.monthlyCallQuota !== null) {
    const at = now.getTime();
    if (!entry.period || at < entry.period.start.getTime() || at >= entry.period.end.getTime()) {
      const period = billingPeriod(input.policy.billingAnchor, now);
      entry.period = { ...period, key: `quota:calls:${period.start.toISOString()}` };
    }
    quota = {
      id: 'quota',
      key: entry.period.key,
      limit: input.policy.monthlyCallQuota,
      periodEnd: entry.period.end,
      periodStart: entry.period.start,
      overage: input.policy.overageAllowed,
    };
  }
  return { scope: input.policy.teamId, windows: entry.windows, ...(quota ? { quota } : {}) };
}

function buildWindows(input: {
  policy: TeamPolicy;
  keyId: string;
  keyLimits?: KeyLimits | null | undefined;
}): WindowSpec[] {
  const windows: WindowSpec[] = [];
  for (const name of windowNames) {
    const keyLimit = input.keyLimits?.[`per_${name}`];
    if (typeof keyLimit === 'number') windows.push(spec('key', input.keyId, name, keyLimit));
  }
  for (const name of windowNames) {
    const teamLimit = input.policy.limits[name];
    if (teamLimit !== null) windows.push(spec('team', input.policy.teamId, name, teamLimit));
  }
  return windows;
}

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * The `RateLimit-Policy` and `RateLimit` fields of the IETF httpapi draft (draft-ietf-httpapi-
 * ratelimit-headers): one named policy per window and for the quota, with `q` (the limit) and `w`
 * (the window in seconds); and for each the remaining calls `r` and the seconds `t` until capacity
 * frees.
 */
export function rateLimitHeaders(
  decision: LimitDecision,
  quotaWindowMs?: number,
): { 'RateLimit-Policy': string; RateLimit: string } | undefined {
  const policies: string[] = [];
  const states: string[] = [];
  for (const window of decision.windows) {
    policies.push(`"${window.id}";q=${window.limit};w=${seconds(window.windowMs)}`);
    states.push(`"${window.id}";r=${window.remaining};t=${seconds(window.resetMs)}`);
  }
  if (decision.quota) {
    policies.push(
      `"${decision.quota.id}";q=${decision.quota.limit}${quotaWindowMs ? `;w=${seconds(quotaWindowMs)}` : ''}`,
    );
    states.push(`"${decision.quota.id}";r=${decision.quota.remaining};t=${seconds(decision.quota.resetMs)}`);
  }
  if (policies.length === 0) return undefined;
  return { 'RateLimit-Policy': policies.join(', '), RateLimit: states.join(', ') };
}
