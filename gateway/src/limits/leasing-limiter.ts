import type { Cluster, Redis } from 'ioredis';
import {
  checkWindowSpec,
  type LimitDecision,
  type Limiter,
  type LimitRequest,
  type QuotaState,
  type WindowState,
} from './limiter.js';
import { redisReconciler } from './reconcile.js';
import { quotaKey, refusedByOf, windowKey } from './redis-limiter.js';
import { ringSlotLua } from './ring-slots.js';

/**
 * Reserve a block of units of every window and the quota in one round trip (the leasing limiter's
 * script). Same data as the one-call script of redis-limiter.ts (window hashes of "<bucket
 * index>:<count>" ring slots, the quota's plain counter), plus a second counter per quota, the
 * overage units among the counted ones; so gateways on either limiter can share one Redis.
 *
 * First the **releases** of an earlier lease are applied: per window, `count` units leave the ring
 * slot of bucket `index` only if that slot still holds that bucket; per quota, the within-limit and
 * overage units leave their counters. Then `g` units are granted: `want`, but no more than a
 * `share`-th of what any window (and a capped quota) has free, and never fewer than `need`: when a
 * window or capped quota has fewer than `need` free the lease is refused exactly as the one-call
 * script refuses a call (nothing counted, same retry-after). On an uncapped quota a grant is either
 * all within the limit or all overage (never straddling), the within-limit part capped the same way.
 * The granted units are counted in the current bucket of every window and in the quota.
 *
 * KEYS: the windows' hashes, then the quota counter and its overage counter when there is a quota.
 * ARGV: want (0 = only release), need, share, window count, has quota (0/1); per window limit,
 *       windowMs, buckets, release index (-1 none), release count; then the quota's limit, period
 *       end (ms since the epoch), overage (0/1), release within-limit, release overage.
 * Returns: refused (0 = granted, w = window w, -1 = quota), retry after ms, now (ms), granted,
 *          granted overage units; per window the sum before the grant and the oldest counted
 *          bucket index (-1 for none); the quota's counted units before the grant.
 */
const reserveScript = `${ringSlotLua}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local want = tonumber(ARGV[1])
local need = tonumber(ARGV[2])
local share = tonumber(ARGV[3])
local windowCount = tonumber(ARGV[4])
local hasQuota = tonumber(ARGV[5]) == 1
local quotaBase = 5 + windowCount * 5
for w = 1, windowCount do
  local base = 5 + (w - 1) * 5
  local buckets = tonumber(ARGV[base + 3])
  local index = tonumber(ARGV[base + 4])
  local count = tonumber(ARGV[base + 5])
  if count > 0 and index >= 0 then
    local slot = index % (buckets + 1)
    local value = redis.call('HGET', KEYS[w], slot)
    if value then
      local slotIndex, slotCount = parseSlot(value)
      if slotIndex == index then
        local left = math.max(0, slotCount - count)
        redis.call('HSET', KEYS[w], slot, index .. ':' .. left)
      end
    end
  end
end
local quotaKey = KEYS[windowCount + 1]
local overKey = KEYS[windowCount + 2]
if hasQuota then
  local within = tonumber(ARGV[quotaBase + 4])
  local over = tonumber(ARGV[quotaBase + 5])
  if within + over > 0 then
    local counted = redis.call('GET', quotaKey)
    if counted then
      redis.call('SET', quotaKey, math.max(0, tonumber(counted) - within - over), 'KEEPTTL')
    end
    if over > 0 then
      local overCounted = redis.call('GET', overKey)
      if overCounted then redis.call('SET', overKey, math.max(0, tonumber(overCounted) - over), 'KEEPTTL') end
    end
  end
end
if want == 0 then return { 0, 0, now, 0, 0 } end
local grant = math.max(want, need)
local refused = 0
local retryAfter = 0
local result = {}
local currents = {}
local slotsOf = {}
local function capped(free)
  return math.max(need, math.floor(free / share))
end
for w = 1, windowCount do
  local base = 5 + (w - 1) * 5
  local limit = tonumber(ARGV[base + 1])
  local windowMs = tonumber(ARGV[base + 2])
  local buckets = tonumber(ARGV[base + 3])
  local bucketMs = windowMs / buckets
  local size = buckets + 1
  local current = math.floor(now / bucketMs)
  local fields = {}
  for slot = 0, size - 1 do fields[slot + 1] = slot end
  local values = redis.call('HMGET', KEYS[w], unpack(fields))
  local counted = {}
  local sum = 0
  local oldest = -1
  for slot = 1, size do
    local value = values[slot]
    if value then
      local index, count = parseSlot(value)
      if index > current - size and index <= current then
        counted[index] = count
        sum = sum + count
        if oldest == -1 or index < oldest then oldest = index end
      end
    end
  end
  currents[w] = current
  slotsOf[w] = counted
  if refused == 0 then
    if sum + need > limit then
      refused = w
      retryAfter = windowMs
      local short = sum + need - limit
      local freed = 0
      for index = current - size + 1, current do
        local count = counted[index]
        if count then
          freed = freed + count
          if freed >= short then
            retryAfter = (index + size) * bucketMs - now
            break
          end
        end
      end
    else
      grant = math.min(grant, capped(limit - sum))
    end
  end
  result[#result + 1] = sum
  result[#result + 1] = oldest
end
local used = 0
local overGranted = 0
if hasQuota then
  local limit = tonumber(ARGV[quotaBase + 1])
  local periodEnd = tonumber(ARGV[quotaBase + 2])
  local overage = tonumber(ARGV[quotaBase + 3]) == 1
  used = tonumber(redis.call('GET', quotaKey) or '0')
  local overUsed = tonumber(redis.call('GET', overKey) or '0')
  local room = limit - (used - overUsed)
  if refused == 0 then
    if room >= need then
      grant = math.min(grant, capped(room))
    elseif not overage then
      refused = -1
      retryAfter = math.max(0, periodEnd - now)
    else
      overGranted = grant
    end
  end
  if refused == 0 then
    redis.call('INCRBY', quotaKey, grant)
    redis.call('PEXPIREAT', quotaKey, periodEnd + 86400000)
    if overGranted > 0 then
      redis.call('INCRBY', overKey, overGranted)
      redis.call('PEXPIREAT', overKey, periodEnd + 86400000)
    end
  end
end
if refused == 0 then
  for w = 1, windowCount do
    local base = 5 + (w - 1) * 5
    local windowMs = tonumber(ARGV[base + 2])
    local buckets = tonumber(ARGV[base + 3])
    local size = buckets + 1
    local current = currents[w]
    local count = (slotsOf[w][current] or 0) + grant
    redis.call('HSET', KEYS[w], current % size, current .. ':' .. count)
    redis.call('PEXPIRE', KEYS[w], windowMs + windowMs / buckets)
  end
else
  grant = 0
end
local answer = { refused, retryAfter, now, grant, overGranted }
for i = 1, #result do answer[#answer + 1] = result[i] end
answer[#answer + 1] = used
return answer
`;

type ScriptClient = (Redis | Cluster) & {
  tollgateReserve(...args: (string | number)[]): Promise<number[]>;
};

/** The quota's overage counter, beside the quota key of redis-limiter.ts (same `{scope}` hash tag). */
const overageKey = (scope: string, key: string) => `${quotaKey(scope, key)}:overage`;

export interface LeasingOptions {
  /** Most units one lease may hold (the adaptive block size doubles up to this). Default 64. */
  maxLease?: number;
  /** A lease takes at most 1/share of what any window or capped quota has free. Default 4. */
  share?: number;
  /** A lease lives at most this long, even when its windows' buckets are longer. Default 1000. */
  maxLeaseMs?: number;
  /** How often expired leases with unused units give them back. Default 1000. */
  sweepMs?: number;
  /** Top a lease up only when its bucket has at least this many ms to go. Default 5. */
  prefetchMarginMs?: number;
}

interface Lease {
  /** The request the lease was taken for (scope, windows, quota: the lease's identity). */
  request: LimitRequest;
  /** Units the last grant gave, and how many of them are still unused. */
  granted: number;
  left: number;
  /** The last `over` units of the grant are quota overage. */
  over: number;
  /** performance.now() after which no unit may be used: the end of the earliest window bucket. */
  deadline: number;
  /** performance.now() at which the snapshot below was true. */
  at: number;
  /** Per window: the bucket index the grant was counted in, the sum before it, ms to its reset. */
  buckets: number[];
  before: number[];
  resets: number[];
  quotaBefore: number;
  quotaResetMs: number;
  /** Units the next grant asks for. */
  want: number;
  pending: Promise<Refusal | undefined> | undefined;
  /** A top-up under way (see `prefetch`). */
  topping: boolean;
  /** Bumped by every reserve: a top-up that answers after one is given back, not merged. */
  generation: number;
}

interface Refusal {
  need: number;
  decision: LimitDecision;
}

/** The key of a lease: one per scope, windows (keys and shapes) and quota. */
const identities = new WeakMap<LimitRequest['windows'], string>();
/** Per request object: the gateway hands the same one for every call of a key in a period. */
const requestIdentities = new WeakMap<LimitRequest, string>();
function identity(request: LimitRequest): string {
  let id = requestIdentities.get(request);
  if (id === undefined) {
    id = identityOf(request);
    requestIdentities.set(request, id);
  }
  return id;
}
function identityOf(request: LimitRequest): string {
  let windows = identities.get(request.windows);
  if (windows === undefined) {
    windows = request.windows
      .map((w) => `${w.id}\u0001${w.key}\u0001${w.limit}\u0001${w.windowMs}\u0001${w.buckets}`)
      .join('\u0002');
    identities.set(request.windows, windows);
  }
  const quota = request.quota;
  return quota === undefined
    ? `${request.scope}\u0000${windows}`
    : `${request.scope}\u0000${windows}\u0000${quota.key}\u0001${quota.limit}\u0001${quota.overage ? 1 : 0}`;
}

/**
 * The limiter on Redis with **leases**: a gateway reserves a block of units of every window and
 * the quota in one round trip (the units are counted in Redis at once), then admits calls from the
 * block in process, with no I/O, until it is used up or the earliest window's current bucket ends.
 * Unused units go back with the next reserve (or the sweep, or close). Guarantees (docs/gateway.md,
 * "Rate limits and quotas"): no over-admission, since a unit is counted before it is used and only
 * used inside the bucket it was counted in; under-admission bounded by the units leased and unused.
 */
export function createLeasingLimiter(client: Redis | Cluster, options: LeasingOptions = {}): Limiter {
  client.defineCommand('tollgateReserve', { lua: reserveScript });
  const scripted = client as ScriptClient;
  const maxLease = options.maxLease ?? 64;
  const share = options.share ?? 4;
  const maxLeaseMs = options.maxLeaseMs ?? 1_000;
  const leases = new Map<string, Lease>();
  /** A top-up is only worth asking for when the bucket has at least this long to go. */
  const prefetchMarginMs = options.prefetchMarginMs ?? 5;

  /** Gives back an expired lease's unused units (sent at most once: on an error they are dropped). */
  function releaseArgs(lease: Lease): { windows: [number, number][]; within: number; over: number } {
    const left = lease.left;
    lease.left = 0;
    lease.generation++;
    const over = Math.min(left, lease.over);
    return {
      windows: lease.request.windows.map((_, position) => [left > 0 ? (lease.buckets[position] ?? -1) : -1, left]),
      within: left - over,
      over,
    };
  }

  async function runScript(
    request: LimitRequest,
    want: number,
    need: number,
    release: ReturnType<typeof releaseArgs>,
  ): Promise<number[]> {
    const keys: string[] = [];
    const args: (string | number)[] = [want, need, share, request.windows.length, request.quota ? 1 : 0];
    request.windows.forEach((window, position) => {
      checkWindowSpec(window);
      keys.push(windowKey(request.scope, window.key));
      const [index, count] = release.windows[position] ?? [-1, 0];
      args.push(window.limit, window.windowMs, window.buckets, index, count);
    });
    if (request.quota) {
      keys.push(quotaKey(request.scope, request.quota.key), overageKey(request.scope, request.quota.key));
      args.push(
        request.quota.limit,
        request.quota.periodEnd.getTime(),
        request.quota.overage ? 1 : 0,
        release.within,
        release.over,
      );
    }
    return scripted.tollgateReserve(keys.length, ...keys, ...args);
  }

  /** Asks Redis for a new block for `lease`, giving back what is left of the old one. */
  async function reserve(lease: Lease, request: LimitRequest, need: number): Promise<Refusal | undefined> {
    // Adapt the block: double while calls use up whole blocks, halve when one expired mostly unused.
    if (lease.granted > 0) {
      if (lease.left < need) lease.want = Math.min(maxLease, lease.want * 2);
      else if (lease.left * 2 > lease.granted) lease.want = Math.max(1, Math.floor(lease.want / 2));
    }
    const release = releaseArgs(lease);
    lease.granted = 0;
    lease.over = 0;
    const sentAt = performance.now();
    let answer: number[];
    try {
      answer = await runScript(request, Math.max(lease.want, need), need, release);
    } finally {
      lease.pending = undefined;
    }
    const refused = Number(answer[0]);
    const retryAfterMs = Number(answer[1]);
    const now = Number(answer[2]);
    const granted = Number(answer[3]);
    lease.request = request;
    lease.at = sentAt;
    let deadline = sentAt + maxLeaseMs;
    request.windows.forEach((window, position) => {
      const sum = Number(answer[5 + position * 2]);
      const oldest = Number(answer[6 + position * 2]);
      const bucketMs = window.windowMs / window.buckets;
      const size = window.buckets + 1;
      const current = Math.floor(now / bucketMs);
      const oldestIndex = oldest >= 0 ? oldest : granted > 0 ? current : -1;
      lease.buckets[position] = current;
      lease.before[position] = sum;
      lease.resets[position] = oldestIndex >= 0 ? (oldestIndex + size) * bucketMs - now : 0;
      // Redis' `now` is no earlier than the moment the request left, so this deadline falls at or
      // before the bucket's end on the local clock.
      deadline = Math.min(deadline, sentAt + (current + 1) * bucketMs - now);
    });
    lease.buckets.length = request.windows.length;
    lease.quotaBefore = Number(answer[5 + request.windows.length * 2]);
    lease.quotaResetMs = request.quota ? Math.max(0, request.quota.periodEnd.getTime() - now) : 0;
    if (refused === 0) {
      lease.granted = granted;
      lease.left = granted;
      lease.over = Number(answer[4]);
      lease.deadline = deadline;
      return undefined;
    }
    lease.want = 1;
    lease.deadline = 0;
    const windows = request.windows.map((window, position) => ({
      id: window.id,
      limit: window.limit,
      windowMs: window.windowMs,
      remaining: Math.max(0, window.limit - (lease.before[position] ?? 0)),
      resetMs: lease.resets[position] ?? 0,
    }));
    const quota = request.quota
      ? {
          id: request.quota.id,
          limit: request.quota.limit,
          used: lease.quotaBefore,
          remaining: Math.max(0, request.quota.limit - lease.quotaBefore),
          overage: false,
          resetMs: lease.quotaResetMs,
        }
      : undefined;
    const refusedBy = refusedByOf(refused, request);
    return { need, decision: { allowed: false, refusedBy, retryAfterMs, windows, ...(quota ? { quota } : {}) } };
  }

  /** Takes `cost` units of a live lease: the answer as if Redis had been asked, from the snapshot. */
  function consume(lease: Lease, request: LimitRequest, cost: number): LimitDecision {
    lease.left -= cost;
    const used = lease.granted - lease.left;
    const elapsed = performance.now() - lease.at;
    const windows: WindowState[] = [];
    for (let position = 0; position < request.windows.length; position++) {
      const window = request.windows[position] as (typeof request.windows)[number];
      windows.push({
        id: window.id,
        limit: window.limit,
        windowMs: window.windowMs,
        remaining: Math.max(0, window.limit - (lease.before[position] ?? 0) - used),
        resetMs: Math.max(0, (lease.resets[position] ?? 0) - elapsed),
      });
    }
    if (!request.quota) return { allowed: true, windows };
    const quotaUsed = lease.quotaBefore + used;
    const quota: QuotaState = {
      id: request.quota.id,
      limit: request.quota.limit,
      used: quotaUsed,
      remaining: Math.max(0, request.quota.limit - quotaUsed),
      overage: used > lease.granted - lease.over,
      resetMs: Math.max(0, lease.quotaResetMs - elapsed),
    };
    return { allowed: true, windows, quota };
  }

  function leaseFor(id: string, request: LimitRequest): Lease {
    let lease = leases.get(id);
    if (!lease) {
      lease = {
        request,
        granted: 0,
        left: 0,
        over: 0,
        deadline: 0,
        at: 0,
        buckets: [],
        before: [],
        resets: [],
        quotaBefore: 0,
        quotaResetMs: 0,
        want: 1,
        pending: undefined,
        topping: false,
        generation: 0,
      };
      leases.set(id, lease);
    }
    return lease;
  }

  /**
   * Tops a lease up before it runs out, so calls do not wait for Redis: when half of a grant is used
   * and its bucket has a while to go, one more block is reserved in the background (counted in Redis
   * like any grant) and added to the lease if it lands in the same buckets; otherwise it is given
   * back at once. A lease holding overage units is not topped up (its overage units must stay the
   * last ones), nor is one whose calls are already waiting for a reserve.
   */
  function prefetch(lease: Lease, request: LimitRequest): void {
    lease.topping = true;
    const generation = lease.generation;
    const granted = lease.granted;
    lease.want = Math.min(maxLease, lease.want * 2);
    const none = { windows: [], within: 0, over: 0 };
    runScript(request, lease.want, 1, none).then(
      (answer) => {
        lease.topping = false;
        const refused = Number(answer[0]);
        const now = Number(answer[2]);
        const more = Number(answer[3]);
        if (refused !== 0 || more === 0) return;
        const buckets = request.windows.map((window) => Math.floor(now / (window.windowMs / window.buckets)));
        const same =
          lease.generation === generation &&
          lease.request === request &&
          lease.over === 0 &&
          performance.now() < lease.deadline &&
          buckets.every((bucket, position) => bucket === lease.buckets[position]);
        if (same) {
          // Sums in this answer count the earlier grant too: `before` stays "everything but ours".
          request.windows.forEach((_, position) => {
            lease.before[position] = Number(answer[5 + position * 2]) - granted;
          });
          lease.quotaBefore = Number(answer[5 + request.windows.length * 2]) - granted;
          lease.granted += more;
          lease.left += more;
          lease.over = Number(answer[4]);
          return;
        }
        const over = Number(answer[4]);
        const release = {
          windows: buckets.map((bucket): [number, number] => [bucket, more]),
          within: more - over,
          over,
        };
        runScript(request, 0, 0, release).catch(() => undefined);
      },
      () => {
        // Redis is unreachable: the next reserve will say so to a caller.
        lease.topping = false;
      },
    );
  }

  async function slow(id: string, request: LimitRequest, cost: number): Promise<LimitDecision> {
    for (;;) {
      const lease = leaseFor(id, request);
      if (lease.left >= cost && performance.now() < lease.deadline) return consume(lease, request, cost);
      if (lease.pending) {
        // Single flight: wait for the reserve under way, then share what it granted.
        const refusal = await lease.pending;
        if (refusal && cost >= refusal.need) return refusal.decision;
        continue;
      }
      const pending = reserve(lease, request, cost);
      lease.pending = pending;
      const refusal = await pending;
      if (refusal) return refusal.decision;
      // The units were counted in Redis during this round trip, as the one-call limiter counts a
      // call: the caller that asked takes its share even if the bucket ended while the answer travelled.
      if (lease.left >= cost) return consume(lease, request, cost);
    }
  }

  /** Gives back the unused units of leases that expired and were not renewed (Redis errors ignored). */
  async function sweep(all: boolean): Promise<void> {
    const now = performance.now();
    const work: Promise<unknown>[] = [];
    for (const [id, lease] of leases) {
      if (lease.pending || (!all && now < lease.deadline)) continue;
      leases.delete(id);
      if (lease.left > 0) {
        work.push(runScript(lease.request, 0, 0, releaseArgs(lease)).catch(() => undefined));
      }
    }
    await Promise.all(work);
  }
  const timer = setInterval(() => void sweep(false), options.sweepMs ?? 1_000);
  timer.unref();

  const reconcile = redisReconciler(client);

  return {
    reconcile,
    check(request: LimitRequest): LimitDecision | Promise<LimitDecision> {
      const cost = request.cost ?? 1;
      const id = identity(request);
      const lease = leases.get(id);
      if (lease !== undefined && lease.left >= cost) {
        const now = performance.now();
        if (now < lease.deadline) {
          const decision = consume(lease, request, cost);
          if (
            lease.left * 2 <= lease.granted &&
            !lease.topping &&
            !lease.pending &&
            lease.over === 0 &&
            lease.deadline - now > prefetchMarginMs
          ) {
            prefetch(lease, request);
          }
          return decision;
        }
      }
      return slow(id, request, cost);
    },
    async close() {
      clearInterval(timer);
      await sweep(true);
    },
  };
}
