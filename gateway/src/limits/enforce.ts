import type { TeamPolicy } from '@tollgate/services';
import { billingPeriod } from './billing-period.js';
import { type LimitDecision, type LimitRequest, type WindowName, type WindowSpec, windowShapes } from './limiter.js';

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

interface Prepared {
  keyLimits: KeyLimits | null | undefined;
  windows: WindowSpec[];
  /** The request of the current billing period (or of every call, without a quota). */
  request?: LimitRequest;
  period?: { start: number; end: number };
}

/** Per policy object (replaced when the team's policy reloads) and key: the specs do not change per call. */
const prepared = new WeakMap<TeamPolicy, Map<string, Prepared>>();

/**
 * Every window and the quota one call is checked against: the key's own limits, the team's plan
 * limits, and the plan's monthly call quota in the team's current billing period. The same request
 * object comes back for every call of a key until its policy reloads or the period turns, so what
 * the limiter and the headers derive from it can be kept with it.
 */
export function limitRequestFor(
  input: { policy: TeamPolicy; keyId: string; keyLimits?: KeyLimits | null | undefined },
  now: Date | number,
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
  const scope = input.policy.teamId;
  if (input.policy.monthlyCallQuota === null) {
    entry.request ??= { scope, windows: entry.windows };
    return entry.request;
  }
  const at = typeof now === 'number' ? now : now.getTime();
  if (!entry.request || !entry.period || at < entry.period.start || at >= entry.period.end) {
    const period = billingPeriod(input.policy.billingAnchor, new Date(at));
    entry.period = { start: period.start.getTime(), end: period.end.getTime() };
    entry.request = {
      scope,
      windows: entry.windows,
      quota: {
        id: 'quota',
        key: `quota:calls:${period.start.toISOString()}`,
        limit: input.policy.monthlyCallQuota,
        periodEnd: period.end,
        periodStart: period.start,
        overage: input.policy.overageAllowed,
      },
    };
  }
  return entry.request;
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

/** RateLimit-Policy values by the request (or decision) they were written for. */
const policyFields = new WeakMap<object, string>();

/**
 * The `RateLimit-Policy` and `RateLimit` fields of the IETF httpapi draft (draft-ietf-httpapi-
 * ratelimit-headers): one named policy per window and for the quota, with `q` (the limit) and `w`
 * (the window in seconds); and for each the remaining calls `r` and the seconds `t` until capacity
 * frees. The policy field only changes with the limits: given `policyOf` (the call's LimitRequest,
 * which stays the same object while its limits do), it is written once and reused.
 */
export function rateLimitHeaders(
  decision: LimitDecision,
  quotaWindowMs?: number,
  policyOf?: object,
): { 'RateLimit-Policy': string; RateLimit: string } | undefined {
  const windows = decision.windows;
  const quota = decision.quota;
  if (windows.length === 0 && !quota) return undefined;
  let policy = policyOf ? policyFields.get(policyOf) : undefined;
  if (policy === undefined) {
    const policies: string[] = [];
    for (const window of windows) policies.push(`"${window.id}";q=${window.limit};w=${seconds(window.windowMs)}`);
    if (quota) policies.push(`"${quota.id}";q=${quota.limit}${quotaWindowMs ? `;w=${seconds(quotaWindowMs)}` : ''}`);
    policy = policies.join(', ');
    if (policyOf) policyFields.set(policyOf, policy);
  }
  let state = '';
  for (const window of windows) {
    state += `${state === '' ? '' : ', '}"${window.id}";r=${window.remaining};t=${seconds(window.resetMs)}`;
  }
  if (quota) state += `${state === '' ? '' : ', '}"${quota.id}";r=${quota.remaining};t=${seconds(quota.resetMs)}`;
  return { 'RateLimit-Policy': policy, RateLimit: state };
}
