import { randomBytes } from 'node:crypto';
import { testRedisUrl } from '@tollgate/services/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLeasingLimiter } from '../src/limits/leasing-limiter.js';
import type { LimitDecision, Limiter, LimitRequest, WindowSpec } from '../src/limits/limiter.js';

const window = (id: string, limit: number, windowMs: number, buckets: number): WindowSpec => ({
  id,
  key: `k:${id}`,
  limit,
  windowMs,
  buckets,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `workers` loops each making `calls` calls one after another on `limiter`. */
async function hammer(limiter: Limiter, request: LimitRequest, workers: number, calls: number) {
  const decisions: LimitDecision[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let call = 0; call < calls; call++) decisions.push(await limiter.check(request));
    }),
  );
  return decisions;
}

// Two "gateways": two leasing limiters, each on its own connection, sharing one Redis.
describe.runIf(testRedisUrl)('leasing limiter (blocks of units reserved from Redis)', () => {
  const prefix = `tgtest:${randomBytes(4).toString('hex')}:`;
  const clients: Redis[] = [];
  const limiters: Limiter[] = [];
  const gateway = (options: Parameters<typeof createLeasingLimiter>[1] = {}) => {
    const client = new Redis(testRedisUrl ?? '', { keyPrefix: prefix });
    clients.push(client);
    const limiter = createLeasingLimiter(client, options);
    limiters.push(limiter);
    return limiter;
  };
  const inspect = gateway();
  const redis = clients[0] as Redis;
  afterAll(async () => {
    for (const limiter of limiters) await limiter.close();
    for (const client of clients) await client.quit();
  });
  const scope = () => `team-${randomBytes(4).toString('hex')}`;
  /** Sum of a window hash's slots, whatever their bucket (the test windows are long enough). */
  const counted = async (key: string) =>
    Object.values(await redis.hgetall(key)).reduce((sum, value) => sum + Number(value.split(':')[1]), 0);

  it('two gateways hammering one scope admit exactly the limit, never more', async () => {
    const first = gateway();
    const second = gateway();
    const request: LimitRequest = { scope: scope(), windows: [window('minute', 300, 60_000, 12)] };
    const [a, b] = await Promise.all([hammer(first, request, 8, 60), hammer(second, request, 8, 60)]);
    const admitted = [...a, ...b].filter((decision) => decision.allowed).length;
    // Both keep calling after the limit is reached, so every leased unit is used: exact.
    expect(admitted).toBe(300);
    expect(await counted(`rl:{${request.scope}}:k:minute`)).toBe(300);
    // Refusals say why and when, as the one-call limiter does.
    const refused = [...a, ...b].find((decision) => !decision.allowed);
    if (!refused || refused.allowed) throw new Error('expected refusals');
    expect(refused.refusedBy).toEqual({ kind: 'window', id: 'minute' });
    expect(refused.retryAfterMs).toBeGreaterThan(50_000);
    // Most calls needed no round trip: far fewer reserves than calls (each reserve is one EVALSHA).
  });

  it('a refused call consumes nothing in any window or the quota', async () => {
    const limiter = gateway();
    const request: LimitRequest = {
      scope: scope(),
      windows: [window('second', 1_000, 60_000, 12), window('minute', 5, 60_000, 12)],
      quota: { id: 'quota', key: 'q', limit: 1_000, periodEnd: new Date(Date.now() + 3_600_000), overage: false },
    };
    const decisions = await hammer(limiter, request, 4, 5);
    expect(decisions.filter((decision) => decision.allowed)).toHaveLength(5);
    const before = await Promise.all([
      redis.hgetall(`rl:{${request.scope}}:k:second`),
      redis.hgetall(`rl:{${request.scope}}:k:minute`),
      redis.get(`rq:{${request.scope}}:q`),
    ]);
    expect(before[2]).toBe('5');
    for (let call = 0; call < 5; call++) expect((await limiter.check(request)).allowed).toBe(false);
    const after = await Promise.all([
      redis.hgetall(`rl:{${request.scope}}:k:second`),
      redis.hgetall(`rl:{${request.scope}}:k:minute`),
      redis.get(`rq:{${request.scope}}:q`),
    ]);
    expect(after).toEqual(before);
  });

  // The next three count blocks exactly, so they turn top-ups off (prefetchMarginMs: Infinity).
  const exactBlocks = { share: 1, prefetchMarginMs: Number.POSITIVE_INFINITY };

  it('a lease dies with its bucket, and its unused units go back with the next reserve', async () => {
    const limiter = gateway(exactBlocks);
    const request: LimitRequest = { scope: scope(), windows: [window('second', 1_000, 1_000, 10)] };
    const key = `rl:{${request.scope}}:k:second`;
    // Start right after a 100 ms bucket begins (Redis runs on this machine's clock).
    while (Date.now() % 100 > 20) await sleep(5);
    const bucket = Math.floor(Date.now() / 100);
    // Blocks of 1, 2 and 4: four calls served, seven units counted, three left in the lease.
    for (let call = 0; call < 4; call++) expect((await limiter.check(request)).allowed).toBe(true);
    expect(Math.floor(Date.now() / 100)).toBe(bucket);
    expect(await redis.hget(key, String(bucket % 11))).toBe(`${bucket}:7`);
    await sleep(150);
    // The lease expired with its bucket: the next call reserves in a new bucket and gives three back.
    const next = await limiter.check(request);
    expect(next.allowed).toBe(true);
    expect(await redis.hget(key, String(bucket % 11))).toBe(`${bucket}:4`);
    const now = Math.floor(Date.now() / 100);
    const slot = await redis.hget(key, String(now % 11));
    expect(slot?.startsWith(`${now}:`) || slot?.startsWith(`${now - 1}:`)).toBe(true);
  });

  it('units one gateway gives back can be used by another', async () => {
    const first = gateway(exactBlocks);
    const second = gateway(exactBlocks);
    const request: LimitRequest = { scope: scope(), windows: [window('minute', 10, 60_000, 12)] };
    for (let call = 0; call < 4; call++) expect((await first.check(request)).allowed).toBe(true);
    // The first holds three units it has not used (blocks 1, 2, 4): the second gets the other three.
    const taken = [];
    for (let call = 0; call < 5; call++) taken.push((await second.check(request)).allowed);
    expect(taken).toEqual([true, true, true, false, false]);
    // Closing the first gives its three back; the second can use them.
    await first.close();
    const after = [];
    for (let call = 0; call < 5; call++) after.push((await second.check(request)).allowed);
    expect(after).toEqual([true, true, true, false, false]);
    expect(await counted(`rl:{${request.scope}}:k:minute`)).toBe(10);
  });

  it('the sweep gives back what an idle gateway leased', async () => {
    const first = gateway({ ...exactBlocks, maxLeaseMs: 50, sweepMs: 50 });
    const second = gateway(exactBlocks);
    const request: LimitRequest = { scope: scope(), windows: [window('minute', 10, 60_000, 12)] };
    for (let call = 0; call < 4; call++) expect((await first.check(request)).allowed).toBe(true);
    await sleep(200);
    const taken = [];
    for (let call = 0; call < 7; call++) taken.push((await second.check(request)).allowed);
    expect(taken).toEqual([true, true, true, true, true, true, false]);
  });

  it('tops a lease up before it runs out, so calls stop waiting for Redis, and counts stay exact', async () => {
    const limiter = gateway();
    const request: LimitRequest = {
      scope: scope(),
      windows: [window('hour', 100_000, 3_600_000, 12)],
      quota: { id: 'quota', key: 'q', limit: 1_000_000, periodEnd: new Date(Date.now() + 3_600_000), overage: false },
    };
    let waited = 0;
    for (let call = 0; call < 400; call++) {
      const answer = limiter.check(request);
      if (answer instanceof Promise && call >= 100) waited++;
      expect((await answer).allowed).toBe(true);
      // Calls arrive a little apart, as over a network: a top-up's answer can land between them.
      await new Promise((resolve) => setImmediate(resolve));
      if (call % 4 === 0) await sleep(1);
    }
    // Blocks grow 1, 2, 4, ... 64 over the first calls; after that a block is topped up while half
    // of it is left, so calls no longer wait (without top-ups, one call in 64 would).
    expect(waited).toBeLessThanOrEqual(1);
    await limiter.close();
    // Everything leased and unused went back: Redis holds exactly the 400 calls served.
    expect(await counted(`rl:{${request.scope}}:k:hour`)).toBe(400);
    expect(await redis.get(`rq:{${request.scope}}:q`)).toBe('400');
  });

  it('a capped quota across two gateways admits exactly its limit', async () => {
    const first = gateway();
    const second = gateway();
    const request: LimitRequest = {
      scope: scope(),
      windows: [],
      quota: { id: 'quota', key: 'q', limit: 200, periodEnd: new Date(Date.now() + 3_600_000), overage: false },
    };
    const [a, b] = await Promise.all([hammer(first, request, 8, 40), hammer(second, request, 8, 40)]);
    const admitted = [...a, ...b].filter((decision) => decision.allowed);
    expect(admitted).toHaveLength(200);
    expect(await redis.get(`rq:{${request.scope}}:q`)).toBe('200');
    const refused = [...a, ...b].find((decision) => !decision.allowed);
    expect(refused).toMatchObject({ refusedBy: { kind: 'quota', id: 'quota' } });
    if (refused?.allowed === false) expect(refused.retryAfterMs).toBeGreaterThan(3_500_000);
  });

  it('counts overage across two gateways exactly: served minus the quota', async () => {
    const first = gateway();
    const second = gateway();
    const request: LimitRequest = {
      scope: scope(),
      windows: [],
      quota: { id: 'quota', key: 'q', limit: 100, periodEnd: new Date(Date.now() + 3_600_000), overage: true },
    };
    const [a, b] = await Promise.all([hammer(first, request, 4, 40), hammer(second, request, 4, 40)]);
    const all = [...a, ...b];
    expect(all.every((decision) => decision.allowed)).toBe(true);
    expect(all.filter((decision) => decision.quota?.overage)).toHaveLength(320 - 100);
    await first.close();
    await second.close();
    // After both gave back their unused units, Redis holds exactly the served calls and overage.
    expect(await redis.get(`rq:{${request.scope}}:q`)).toBe('320');
    expect(await redis.get(`rq:{${request.scope}}:q:overage`)).toBe('220');
  });

  it('recovers when Redis forgets the script (NOSCRIPT)', async () => {
    const request: LimitRequest = { scope: scope(), windows: [window('minute', 2, 60_000, 12)] };
    expect((await inspect.check(request)).allowed).toBe(true);
    await redis.script('FLUSH');
    expect((await inspect.check(request)).allowed).toBe(true);
    expect((await inspect.check(request)).allowed).toBe(false);
  });
});
