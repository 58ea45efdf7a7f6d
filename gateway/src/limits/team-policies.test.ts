import { createMemoryTeamPolicyEvents, type TeamPolicy } from '@tollgate/services';
import { describe, expect, it } from 'vitest';
import { createTeamPolicyCache } from './team-policies.js';

const policy = (teamId: string, hour: number): TeamPolicy => ({
  teamId,
  planSlug: 'p',
  entitlements: {},
  entitlementsHeader: '',
  limits: { second: null, minute: null, hour, day: null },
  monthlyCallQuota: null,
  overageAllowed: false,
  billingAnchor: new Date(0),
  paymentRequired: false,
});

describe('team policy cache', () => {
  it('loads a team once for concurrent calls, serves it while fresh, reloads after the TTL or an invalidation', async () => {
    let now = 0;
    let loads = 0;
    let hour = 100;
    const cache = createTeamPolicyCache({
      load: async (teamId) => {
        loads++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return policy(teamId, hour);
      },
      ttlMs: 1_000,
      now: () => now,
    });
    const burst = await Promise.all(Array.from({ length: 20 }, () => cache.get('t')));
    expect(loads).toBe(1);
    expect(burst.every((p) => p?.limits.hour === 100)).toBe(true);
    hour = 200;
    now = 999;
    expect((await cache.get('t'))?.limits.hour).toBe(100);
    now = 1_000;
    expect((await cache.get('t'))?.limits.hour).toBe(200);
    hour = 300;
    cache.invalidate('t');
    expect((await cache.get('t'))?.limits.hour).toBe(300);
    expect(loads).toBe(3);
  });

  it('keeps serving a known team while the database is down, and refuses an unknown one with 503', async () => {
    let now = 0;
    let down = false;
    const cache = createTeamPolicyCache({
      load: async (teamId) => {
        if (down) throw new Error('connection refused');
        return policy(teamId, 7);
      },
      ttlMs: 10,
      now: () => now,
    });
    await cache.get('known');
    down = true;
    now = 1_000;
    expect((await cache.get('known'))?.limits.hour).toBe(7);
    await expect(cache.get('stranger')).rejects.toMatchObject({ code: 'database_unreachable', status: 503 });
  });

  it('keeps at most maxEntries teams', async () => {
    let loads = 0;
    const cache = createTeamPolicyCache({
      load: async (teamId) => {
        loads++;
        return policy(teamId, 1);
      },
      maxEntries: 2,
    });
    await cache.get('a');
    await cache.get('b');
    await cache.get('c');
    expect(loads).toBe(3);
    await cache.get('c');
    await cache.get('b');
    expect(loads).toBe(3);
    await cache.get('a');
    expect(loads).toBe(4);
  });

  it('forgets a team when its policy changes on the events, and does not keep a load that started before', async () => {
    const events = createMemoryTeamPolicyEvents();
    let hour = 1;
    let release: (() => void) | undefined;
    const cache = createTeamPolicyCache({
      load: async (teamId) => {
        const seen = hour;
        if (seen === 1) await new Promise<void>((resolve) => (release = resolve));
        return policy(teamId, seen);
      },
      events,
    });
    // A load reads the old state, then the change commits and is announced before the load ends.
    const stale = cache.get('t');
    hour = 2;
    await events.publishInvalidation('t');
    release?.();
    expect((await stale)?.limits.hour).toBe(1);
    expect((await cache.get('t'))?.limits.hour).toBe(2);
    hour = 3;
    await events.publishInvalidation('other');
    expect((await cache.get('t'))?.limits.hour).toBe(2);
    await events.publishInvalidation('t');
    expect((await cache.get('t'))?.limits.hour).toBe(3);
    cache.close();
    hour = 4;
    await events.publishInvalidation('t');
    expect((await cache.get('t'))?.limits.hour).toBe(3);
  });
});
