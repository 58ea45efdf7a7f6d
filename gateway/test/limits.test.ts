import { randomBytes } from 'node:crypto';
import { testRedisUrl } from '@tollgate/services/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { LimitRequest, WindowSpec } from '../src/limits/limiter.js';
import { createMemoryLimiter } from '../src/limits/memory-limiter.js';
import { createRedisLimiter } from '../src/limits/redis-limiter.js';

const window = (id: string, limit: number, windowMs: number, buckets: number): WindowSpec => ({
  id,
  key: `k:${id}`,
  limit,
  windowMs,
  buckets,
});

describe('in-process limiter (bucketed sliding windows)', () => {
  it('admits the limit, refuses the next without counting it, and says when to retry', async () => {
    let now = 1_000_000;
    const limiter = createMemoryLimiter({ now: () => now });
    const request: LimitRequest = { scope: 'team-a', windows: [window('second', 3, 1_000, 10)] };
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await limiter.check(request));
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
    expect(decisions[2]?.windows[0]?.remaining).toBe(0);
    const refused = decisions[3];
    if (refused?.allowed !== false) throw new Error('expected a refusal');
    expect(refused.refusedBy).toEqual({ kind: 'window', id: 'second' });
    // The three calls sit in the bucket [1_000_000, 1_000_100): they leave the window 11 buckets later.
    expect(refused.retryAfterMs).toBe(1_100);
    now += refused.retryAfterMs - 1;
    expect((await limiter.check(request)).allowed).toBe(false);
    now += 1;
    // Refusals consumed nothing: the window is empty again and takes three more.
    for (let i = 0; i < 3; i++) expect((await limiter.check(request)).allowed).toBe(true);
    expect((await limiter.check(request)).allowed).toBe(false);
    await limiter.close();
  });

  it('never admits more than the limit in any interval of the window length (random arrivals)', async () => {
    let now = 5_000_000;
    const limiter = createMemoryLimiter({ now: () => now });
    const limit = 7;
    const windowMs = 1_000;
    const request: LimitRequest = { scope: 'team-b', windows: [window('second', limit, windowMs, 10)] };
    const admitted: number[] = [];
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 3_000; i++) {
      now += Math.floor(random() * 60);
      if ((await limiter.check(request)).allowed) admitted.push(now);
    }
    let worst = 0;
    for (let end = 0; end < admitted.length; end++) {
      let count = 0;
      for (let i = end; i >= 0 && (admitted[i] as number) > (admitted[end] as number) - windowMs; i--) count++;
      worst = Math.max(worst, count);
    }
    expect(worst).toBeLessThanOrEqual(limit);
    // And it is not needlessly strict: over ~90 s at ~33 calls/s, close to 7 per second get through.
    const seconds = (now - 5_000_000) / 1000;
    expect(admitted.length).toBeGreaterThan(seconds * limit * 0.8);
    await limiter.close();
  });

  it('checks every window at once; a refusal by one counts in none', async () => {
    let now = 10_000_000;
    const limiter = createMemoryLimiter({ now: () => now });
    const request: LimitRequest = {
      scope: 'team-c',
      windows: [window('key-second', 5, 1_000, 10), window('team-minute', 8, 60_000, 12)],
    };
    const first = [];
    for (let i = 0; i < 6; i++) first.push((await limiter.check(request)).allowed);
    expect(first).toEqual([true, true, true, true, true, false]);
    now += 1_200;
    const second = [];
    for (let i = 0; i < 5; i++) {
      const decision = await limiter.check(request);
      second.push(decision.allowed ? 'ok' : decision.refusedBy.id);
    }
    expect(second).toEqual(['ok', 'ok', 'ok', 'team-minute', 'team-minute']);
    const state = await limiter.check(request);
    expect(state.windows.map((w) => w.remaining)).toEqual([2, 0]);
    await limiter.close();
  });

  it('caps a quota, or admits beyond it as overage', async () => {
    const limiter = createMemoryLimiter();
    const periodEnd = new Date(Date.now() + 86_400_000);
    const capped: LimitRequest = {
      scope: 'team-d',
      windows: [],
      quota: { id: 'calls', key: 'q:calls', limit: 2, periodEnd, overage: false },
    };
    expect((await limiter.check(capped)).allowed).toBe(true);
    expect((await limiter.check(capped)).quota?.remaining).toBe(0);
    const refused = await limiter.check(capped);
    if (refused.allowed) throw new Error('expected a refusal');
    expect(refused.refusedBy).toEqual({ kind: 'quota', id: 'calls' });
    expect(refused.retryAfterMs).toBeGreaterThan(86_000_000);
    const open: LimitRequest = {
      ...capped,
      scope: 'team-e',
      quota: { ...(capped.quota as NonNullable<LimitRequest['quota']>), overage: true },
    };
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await limiter.check(open));
    expect(results.map((r) => [r.allowed, r.quota?.overage, r.quota?.used])).toEqual([
      [true, false, 1],
      [true, false, 2],
      [true, true, 3],
    ]);
    await limiter.close();
  });
});

describe.runIf(testRedisUrl)('Redis limiter (one script per call)', () => {
  const client = new Redis(testRedisUrl ?? '', { keyPrefix: `tgtest:${randomBytes(4).toString('hex')}:` });
  const limiter = createRedisLimiter(client);
  afterAll(() => client.quit());
  const scope = () => `team-${randomBytes(4).toString('hex')}`;

  it('admits the limit and refuses the rest, like the in-process limiter', async () => {
    const request: LimitRequest = { scope: scope(), windows: [window('minute', 4, 60_000, 12)] };
    const memory = createMemoryLimiter();
    const fromRedis = [];
    const fromMemory = [];
    for (let i = 0; i < 6; i++) {
      fromRedis.push((await limiter.check(request)).allowed);
      fromMemory.push((await memory.check(request)).allowed);
    }
    expect(fromRedis).toEqual([true, true, true, true, false, false]);
    expect(fromRedis).toEqual(fromMemory);
    const refused = await limiter.check(request);
    if (refused.allowed) throw new Error('expected a refusal');
    expect(refused.retryAfterMs).toBeGreaterThan(55_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(65_000);
    await memory.close();
  });

  it('is atomic: concurrent calls never overshoot', async () => {
    const request: LimitRequest = {
      scope: scope(),
      windows: [window('second', 1_000, 1_000, 10), window('hour', 20, 3_600_000, 12)],
      quota: { id: 'calls', key: 'q', limit: 100, periodEnd: new Date(Date.now() + 3_600_000), overage: false },
    };
    const decisions = await Promise.all(Array.from({ length: 60 }, () => limiter.check(request)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    const last = await limiter.check(request);
    expect(last.quota?.used).toBe(20);
  });

  it('caps a quota, or counts overage, and survives a script cache flush (NOSCRIPT)', async () => {
    const periodEnd = new Date(Date.now() + 3_600_000);
    const capped: LimitRequest = {
      scope: scope(),
      windows: [],
      quota: { id: 'calls', key: 'q', limit: 1, periodEnd, overage: false },
    };
    expect((await limiter.check(capped)).allowed).toBe(true);
    await client.script('FLUSH');
    const refused = await limiter.check(capped);
    expect(refused.allowed).toBe(false);
    const open: LimitRequest = {
      ...capped,
      scope: scope(),
      quota: { id: 'calls', key: 'q', limit: 1, periodEnd, overage: true },
    };
    await limiter.check(open);
    const over = await limiter.check(open);
    expect([over.allowed, over.quota?.overage, over.quota?.used]).toEqual([true, true, 2]);
  });
});
