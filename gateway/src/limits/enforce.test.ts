import type { TeamPolicy } from '@tollgate/services';
import { describe, expect, it } from 'vitest';
import { limitRequestFor, rateLimitHeaders } from './enforce.js';
import { createMemoryLimiter } from './memory-limiter.js';

const policy: TeamPolicy = {
  teamId: 'team-1',
  planSlug: 'free',
  entitlements: {},
  entitlementsHeader: '',
  limits: { second: 10, minute: null, hour: 1000, day: null },
  monthlyCallQuota: 10_000,
  overageAllowed: false,
  billingAnchor: new Date('2026-01-31T00:00:00Z'),
  paymentRequired: false,
};

describe('limits of one call', () => {
  it('combines the key limits, the plan windows and the quota of the current billing period', () => {
    const request = limitRequestFor(
      { policy, keyId: 'key-1', keyLimits: { per_second: 2, per_day: 500 } },
      new Date('2026-02-10T00:00:00Z'),
    );
    expect(request.scope).toBe('team-1');
    expect(request.windows.map((w) => [w.id, w.limit, w.windowMs])).toEqual([
      ['key-second', 2, 1_000],
      ['key-day', 500, 86_400_000],
      ['team-second', 10, 1_000],
      ['team-hour', 1000, 3_600_000],
    ]);
    expect(request.quota).toEqual({
      id: 'quota',
      key: 'quota:calls:2026-01-31T00:00:00.000Z',
      limit: 10_000,
      periodEnd: new Date('2026-02-28T00:00:00Z'),
      periodStart: new Date('2026-01-31T00:00:00Z'),
      overage: false,
    });
  });

  it('writes RateLimit-Policy and RateLimit as the IETF draft says', async () => {
    let now = 1_000_000;
    const limiter = createMemoryLimiter({ now: () => now });
    const request = limitRequestFor({ policy: { ...policy, monthlyCallQuota: null }, keyId: 'k' }, new Date(now));
    await limiter.check(request);
    now += 250;
    const decision = await limiter.check(request);
    // t: the hour's first call sits in the bucket [900 s, 1200 s) and leaves the window with it, at
    // 4800 s (one bucket later than an exact log would say: the conservative side).
    expect(rateLimitHeaders(decision)).toEqual({
      'RateLimit-Policy': '"team-second";q=10;w=1, "team-hour";q=1000;w=3600',
      RateLimit: '"team-second";r=8;t=1, "team-hour";r=998;t=3800',
    });
    await limiter.close();
  });
});
