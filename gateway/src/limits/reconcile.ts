import type { Cluster, Redis } from 'ioredis';
import type { LimitRequest } from './limiter.js';
import { quotaKey, windowKey } from './redis-limiter.js';
import { ringSlotLua } from './ring-slots.js';

/**
 * Windows this long or longer get the calls served while Redis was away added back. Shorter ones
 * do not: by the time Redis answers again their buckets from the outage have mostly left the
 * window, and counting those calls now would refuse calls the window no longer covers.
 */
export const reconciledWindowMs = 3_600_000;

/**
 * Adds calls admitted elsewhere (in process, under `fail-open`, while Redis could not be reached)
 * to the counters in Redis: the quota and its overage counter, and the current bucket of every
 * window of an hour or longer (counted now: conservative, they stay in the window at most one
 * outage longer than they should). Same data layout as the limiter scripts; all keys share the
 * `{scope}` hash tag.
 *
 * KEYS: the included windows' hashes, then the quota counter and its overage counter when there is
 * a quota. ARGV: calls, overage calls, window count, has quota (0/1); per window windowMs, buckets;
 * then the quota's period end (ms since the epoch).
 */
const reconcileScript = `${ringSlotLua}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local calls = tonumber(ARGV[1])
local over = tonumber(ARGV[2])
local windowCount = tonumber(ARGV[3])
local hasQuota = tonumber(ARGV[4]) == 1
for w = 1, windowCount do
  local base = 4 + (w - 1) * 2
  local windowMs = tonumber(ARGV[base + 1])
  local buckets = tonumber(ARGV[base + 2])
  local size = buckets + 1
  local current = math.floor(now / (windowMs / buckets))
  local slot = current % size
  local count = calls
  local value = redis.call('HGET', KEYS[w], slot)
  if value then
    local slotIndex, slotCount = parseSlot(value)
    if slotIndex == current then count = count + slotCount end
  end
  redis.call('HSET', KEYS[w], slot, current .. ':' .. count)
  redis.call('PEXPIRE', KEYS[w], windowMs + windowMs / buckets)
end
if hasQuota then
  local periodEnd = tonumber(ARGV[4 + windowCount * 2 + 1])
  redis.call('INCRBY', KEYS[windowCount + 1], calls)
  redis.call('PEXPIREAT', KEYS[windowCount + 1], periodEnd + 86400000)
  if over > 0 then
    redis.call('INCRBY', KEYS[windowCount + 2], over)
    redis.call('PEXPIREAT', KEYS[windowCount + 2], periodEnd + 86400000)
  end
end
return calls
`;

type ScriptClient = (Redis | Cluster) & {
  tollgateReconcile(...args: (string | number)[]): Promise<number>;
};

/** A `reconcile` for a limiter on `client` (see `Limiter.reconcile`). */
export function redisReconciler(
  client: Redis | Cluster,
): (request: LimitRequest, calls: number, overage: number) => Promise<void> {
  client.defineCommand('tollgateReconcile', { lua: reconcileScript });
  const scripted = client as ScriptClient;
  return async (request, calls, overage) => {
    if (calls <= 0) return;
    const windows = request.windows.filter((window) => window.windowMs >= reconciledWindowMs);
    const keys = windows.map((window) => windowKey(request.scope, window.key));
    const args: (string | number)[] = [calls, overage, windows.length, request.quota ? 1 : 0];
    for (const window of windows) args.push(window.windowMs, window.buckets);
    if (request.quota) {
      keys.push(quotaKey(request.scope, request.quota.key), `${quotaKey(request.scope, request.quota.key)}:overage`);
      args.push(request.quota.periodEnd.getTime());
    }
    await scripted.tollgateReconcile(keys.length, ...keys, ...args);
  };
}
