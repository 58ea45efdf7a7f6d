import { randomBytes } from 'node:crypto';
import { startRedisCluster, type TestRedisCluster, testRedisUrl } from '@tollgate/services/testing';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLeasingLimiter } from '../src/limits/leasing-limiter.js';
import type { Limiter, LimitRequest } from '../src/limits/limiter.js';
import { createRedisLimiter } from '../src/limits/redis-limiter.js';

/** A request for one team: a per-minute window, a per-day window and the period's quota. */
function teamRequest(scope: string, limits: { minute: number; day: number; quota: number }): LimitRequest {
  return {
    scope,
    windows: [
      { id: 'team-minute', key: 't:1m', limit: limits.minute, windowMs: 60_000, buckets: 12 },
      { id: 'team-day', key: 't:1d', limit: limits.day, windowMs: 86_400_000, buckets: 24 },
    ],
    quota: {
      id: 'quota',
      key: 'q:calls:2025-01',
      limit: limits.quota,
      periodEnd: new Date(Date.now() + 86_400_000),
      overage: false,
    },
  };
}

const keysOf = (scope: string) => [`rl:{${scope}}:t:1m`, `rl:{${scope}}:t:1d`, `rq:{${scope}}:q:calls:2025-01`];

// A three-master cluster from the local redis-server binaries (startRedisCluster); skipped (and
// listed as such in the run's banner) without TEST_REDIS_URL.
describe.skipIf(!testRedisUrl)('the Redis limiter on a 3-master Redis Cluster', () => {
  let redisCluster: TestRedisCluster;
  let cluster: Cluster;
  let limiter: Limiter;

  beforeAll(async () => {
    redisCluster = await startRedisCluster();
    cluster = new Cluster(redisCluster.nodes);
    limiter = createRedisLimiter(cluster);
  }, 60_000);

  afterAll(async () => {
    await limiter?.close();
    cluster?.disconnect();
    await redisCluster?.stop();
  });

  const slotOf = async (key: string) => Number(await cluster.cluster('KEYSLOT', key));

  /** The port of the master serving a slot. */
  async function masterOf(slot: number): Promise<number> {
    const ranges = await cluster.cluster('SLOTS');
    const master = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2];
    if (!master) throw new Error(`no master serves slot ${slot}`);
    return master[1];
  }

  it('checks two windows and the quota of one scope in one script call, all its keys in one slot', async () => {
    const scope = `team-${randomBytes(4).toString('hex')}`;
    const decision = await limiter.check(teamRequest(scope, { minute: 10, day: 100, quota: 1_000 }));
    expect(decision.allowed).toBe(true);
    expect(decision.windows.map((window) => [window.id, window.remaining])).toEqual([
      ['team-minute', 9],
      ['team-day', 99],
    ]);
    expect(decision.quota).toMatchObject({ used: 1, remaining: 999 });
    const keys = keysOf(scope);
    const slots = await Promise.all(keys.map(slotOf));
    expect(new Set(slots).size).toBe(1);
    // Every key was written by that one call: the cluster ran the script where they all live.
    expect(await Promise.all(keys.map((key) => cluster.exists(key)))).toEqual([1, 1, 1]);
    expect(await cluster.get(keys[2] as string)).toBe('1');
  });

  it('admits exactly the window limit under concurrent calls; the refused ones consume nothing', async () => {
    const scope = `team-${randomBytes(4).toString('hex')}`;
    const request = teamRequest(scope, { minute: 5, day: 100, quota: 1_000 });
    const decisions = await Promise.all(Array.from({ length: 20 }, () => limiter.check(request)));
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
    for (const decision of decisions.filter((decision) => !decision.allowed)) {
      expect(decision).toMatchObject({ refusedBy: { kind: 'window', id: 'team-minute' } });
    }
    // Only the five admitted calls were counted in the other window and the quota: one more call
    // without the full minute window is the sixth.
    const day = await limiter.check({ ...request, windows: request.windows.slice(1) });
    expect(day.windows[0]?.remaining).toBe(100 - 6);
    expect(await cluster.get(keysOf(scope)[2] as string)).toBe('6');
  });

  it('the leasing limiter reserves blocks on the cluster: exact limit, its keys in one slot', async () => {
    const scope = `team-${randomBytes(4).toString('hex')}`;
    const leasing = createLeasingLimiter(cluster);
    try {
      const request = teamRequest(scope, { minute: 50, day: 1_000, quota: 1_000 });
      request.quota = { ...(request.quota as NonNullable<LimitRequest['quota']>), overage: true };
      const decisions = await Promise.all(Array.from({ length: 80 }, () => leasing.check(request)));
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(50);
      const keys = [...keysOf(scope), `rq:{${scope}}:q:calls:2025-01:overage`];
      expect(new Set(await Promise.all(keys.map(slotOf))).size).toBe(1);
      expect(await cluster.get(keys[2] as string)).toBe('50');
    } finally {
      await leasing.close();
    }
  });

  it('refuses the call past a capped quota without counting it anywhere', async () => {
    const scope = `team-${randomBytes(4).toString('hex')}`;
    const request = teamRequest(scope, { minute: 100, day: 100, quota: 3 });
    const admitted = [];
    for (let call = 0; call < 3; call++) admitted.push((await limiter.check(request)).allowed);
    expect(admitted).toEqual([true, true, true]);
    const keys = keysOf(scope);
    const before = await Promise.all([
      cluster.hgetall(keys[0] as string),
      cluster.hgetall(keys[1] as string),
      cluster.get(keys[2] as string),
    ]);
    const refused = await limiter.check(request);
    expect(refused).toMatchObject({ allowed: false, refusedBy: { kind: 'quota', id: 'quota' } });
    expect(refused.quota).toMatchObject({ used: 3, remaining: 0 });
    expect(
      await Promise.all([
        cluster.hgetall(keys[0] as string),
        cluster.hgetall(keys[1] as string),
        cluster.get(keys[2] as string),
      ]),
    ).toEqual(before);
    expect(before[2]).toBe('3');
  });

  it('serves two scopes on different slots and masters, each counted apart', async () => {
    // Scopes whose hash tags land on two different masters, so the script runs on both.
    const first = `team-${randomBytes(4).toString('hex')}`;
    const firstMaster = await masterOf(await slotOf(keysOf(first)[0] as string));
    let second = '';
    for (let attempt = 0; attempt < 100 && second === ''; attempt++) {
      const candidate = `team-${randomBytes(4).toString('hex')}`;
      if ((await masterOf(await slotOf(keysOf(candidate)[0] as string))) !== firstMaster) second = candidate;
    }
    expect(second).not.toBe('');
    expect(await slotOf(keysOf(first)[0] as string)).not.toBe(await slotOf(keysOf(second)[0] as string));

    const limits = { minute: 4, day: 100, quota: 1_000 };
    const decisions = await Promise.all(
      [first, second].flatMap((scope) =>
        Array.from({ length: 6 }, async () => ({ scope, decision: await limiter.check(teamRequest(scope, limits)) })),
      ),
    );
    for (const scope of [first, second]) {
      const admitted = decisions.filter((entry) => entry.scope === scope && entry.decision.allowed);
      expect(admitted, scope).toHaveLength(4);
      expect(await cluster.get(keysOf(scope)[2] as string)).toBe('4');
    }
  });
});
