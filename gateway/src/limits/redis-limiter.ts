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
import { ringSlotLua } from './ring-slots.js';

/**
 * One call's whole check, in one round trip: every window and the quota are read, and only when
 * all admit the call is it counted in all of them (a refused call consumes nothing). The clock is
 * Redis' own (TIME), so gateways with skewed clocks agree. Each window is a hash of N + 1 ring
 * slots holding "<bucket index>:<count>"; the quota a plain counter.
 *
 * KEYS: the windows' hashes, then the quota counter when there is one.
 * ARGV: cost, window count, has quota (0/1), then per window limit, windowMs, buckets, then the
 *       quota's limit, period end (ms since the epoch) and overage (0/1).
 * Returns: refused (0 = admitted, w = window w, -1 = quota), retry after ms, now (ms), then per
 *          window the sum before this call and the oldest counted bucket index (-1 for none), then
 *          the quota used before this call.
 */
const checkScript = `${ringSlotLua}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local cost = tonumber(ARGV[1])
local windowCount = tonumber(ARGV[2])
local hasQuota = tonumber(ARGV[3]) == 1
local refused = 0
local retryAfter = 0
local result = {}
local currents = {}
local slotsOf = {}
for w = 1, windowCount do
  local base = 3 + (w - 1) * 3
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
  if refused == 0 and sum + cost > limit then
    refused = w
    retryAfter = windowMs
    local need = sum + cost - limit
    local freed = 0
    for index = current - size + 1, current do
      local count = counted[index]
      if count then
        freed = freed + count
        if freed >= need then
          retryAfter = (index + size) * bucketMs - now
          break
        end
      end
    end
  end
  result[#result + 1] = sum
  result[#result + 1] = oldest
end
local quotaKey = KEYS[windowCount + 1]
local used = 0
if hasQuota then
  local base = 3 + windowCount * 3
  local limit = tonumber(ARGV[base + 1])
  local periodEnd = tonumber(ARGV[base + 2])
  local overage = tonumber(ARGV[base + 3]) == 1
  used = tonumber(redis.call('GET', quotaKey) or '0')
  if refused == 0 and not overage and used + cost > limit then
    refused = -1
    retryAfter = math.max(0, periodEnd - now)
  end
  if refused == 0 then
    redis.call('INCRBY', quotaKey, cost)
    redis.call('PEXPIREAT', quotaKey, periodEnd + 86400000)
  end
end
if refused == 0 then
  for w = 1, windowCount do
    local base = 3 + (w - 1) * 3
    local windowMs = tonumber(ARGV[base + 2])
    local buckets = tonumber(ARGV[base + 3])
    local size = buckets + 1
    local current = currents[w]
    local count = (slotsOf[w][current] or 0) + cost
    redis.call('HSET', KEYS[w], current % size, current .. ':' .. count)
    redis.call('PEXPIRE', KEYS[w], windowMs + windowMs / buckets)
  end
end
local answer = { refused, retryAfter, now }
for i = 1, #result do answer[#answer + 1] = result[i] end
answer[#answer + 1] = used
return answer
`;

type ScriptClient = (Redis | Cluster) & {
  tollgateLimit(...args: (string | number)[]): Promise<number[]>;
};

/** Redis keys of one subject: all share the `{scope}` hash tag, so they live in one Cluster slot. */
export const windowKey = (scope: string, key: string) => `rl:{${scope}}:${key}`;
export const quotaKey = (scope: string, key: string) => `rq:{${scope}}:${key}`;

/** What refused a call, from a script's answer: -1 the quota, w the w-th window (1-based). */
export function refusedByOf(refused: number, request: LimitRequest): { kind: 'window' | 'quota'; id: string } {
  return refused === -1
    ? { kind: 'quota', id: request.quota?.id ?? 'quota' }
    : { kind: 'window', id: request.windows[refused - 1]?.id ?? 'window' };
}

/**
 * The limiter on Redis or Redis Cluster: one EVALSHA per call (ioredis' defineCommand sends the
 * script once and falls back to EVAL when Redis answers NOSCRIPT, e.g. after a restart). Errors
 * (Redis down) are thrown: the API's failure policy decides what happens then.
 */
export function createRedisLimiter(client: Redis | Cluster): Limiter {
  client.defineCommand('tollgateLimit', { lua: checkScript });
  const scripted = client as ScriptClient;
  const reconcile = redisReconciler(client);
  return {
    reconcile,
    async check(request: LimitRequest): Promise<LimitDecision> {
      const cost = request.cost ?? 1;
      const keys: string[] = [];
      const args: (string | number)[] = [cost, request.windows.length, request.quota ? 1 : 0];
      for (const window of request.windows) {
        checkWindowSpec(window);
        keys.push(windowKey(request.scope, window.key));
        args.push(window.limit, window.windowMs, window.buckets);
      }
      if (request.quota) {
        keys.push(quotaKey(request.scope, request.quota.key));
        args.push(request.quota.limit, request.quota.periodEnd.getTime(), request.quota.overage ? 1 : 0);
      }
      const answer = await scripted.tollgateLimit(keys.length, ...keys, ...args);
      const refused = Number(answer[0]);
      const retryAfterMs = Number(answer[1]);
      const now = Number(answer[2]);
      const admitted = refused === 0;
      const windows: WindowState[] = request.windows.map((window, position) => {
        const sum = Number(answer[3 + position * 2]);
        const oldest = Number(answer[4 + position * 2]);
        const bucketMs = window.windowMs / window.buckets;
        const size = window.buckets + 1;
        const after = admitted ? sum + cost : sum;
        const oldestIndex = oldest >= 0 ? oldest : admitted ? Math.floor(now / bucketMs) : -1;
        return {
          id: window.id,
          limit: window.limit,
          windowMs: window.windowMs,
          remaining: Math.max(0, window.limit - after),
          resetMs: oldestIndex >= 0 ? (oldestIndex + size) * bucketMs - now : 0,
        };
      });
      let quota: QuotaState | undefined;
      if (request.quota) {
        const before = Number(answer[3 + request.windows.length * 2]);
        const used = admitted ? before + cost : before;
        quota = {
          id: request.quota.id,
          limit: request.quota.limit,
          used,
          remaining: Math.max(0, request.quota.limit - used),
          overage: admitted && used > request.quota.limit,
          resetMs: Math.max(0, request.quota.periodEnd.getTime() - now),
        };
      }
      if (admitted) return { allowed: true, windows, ...(quota ? { quota } : {}) };
      const refusedBy = refusedByOf(refused, request);
      return { allowed: false, refusedBy, retryAfterMs, windows, ...(quota ? { quota } : {}) };
    },
    close: async () => {},
  };
}
