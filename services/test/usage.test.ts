import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryUsageCounterStore } from '../src/usage/memory-usage-counter-store.js';
import { emptyCounts } from '../src/usage/usage-counter-store.js';
import { flushUsage } from '../src/usage/usage-flusher.js';
import { pruneUsageIdempotencyKeys, reportUsage } from '../src/usage/usage-reports.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

let testApi: TestApi;
const { account, call: api } = accountsOn(() => testApi);

async function invitationTokenFor(email: string): Promise<string> {
  const messages = (await testApi.mail.parsed()).filter((message) => message.to === email);
  const token = /tollgate teams accept (tgi_[A-Za-z0-9_-]+)/.exec(messages.at(-1)?.text ?? '')?.[1];
  if (!token) throw new Error(`no invitation mail for ${email}`);
  return token;
}

async function count(table: string): Promise<number> {
  const result = await testApi.database.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]?.n);
}

let operator: SignedInAccount;
let admin: SignedInAccount;
let user: SignedInAccount;
let outsider: SignedInAccount;
let teamId: string;
let teamSlug: string;

beforeAll(async () => {
  testApi = await startTestApi();
  [operator, admin, user, outsider] = await Promise.all([
    account('operator', 'admin'),
    account('admin'),
    account('user'),
    account('outsider'),
  ]);
  const created = await api(admin, 'POST', '/v1/teams', { name: `Usage ${randomBytes(3).toString('hex')}` });
  teamId = created.body.id;
  teamSlug = created.body.slug;
  expect(
    (await api(admin, 'POST', `/v1/teams/${teamId}/invitations`, { email: user.email, role: 'user' })).status,
  ).toBe(201);
  const token = await invitationTokenFor(user.email);
  expect((await api(user, 'POST', '/v1/invitations/accept', { token })).status).toBe(200);
});
afterAll(async () => {
  await testApi?.dispose();
});

describe(`POST /v1/usage (${expectedDatabaseDriver})`, () => {
  it('records an event once: a replay answers the original, another body is a 409 and writes nothing', async () => {
    const event = { team: teamSlug, metric: 'storage_bytes', quantity: 5_000, idempotency_key: 'storage-1' };
    const first = await api(operator, 'POST', '/v1/usage', event);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      team_id: teamId,
      metric: 'storage_bytes',
      quantity: 5_000,
      idempotency_key: 'storage-1',
    });
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const replay = await api(operator, 'POST', '/v1/usage', event);
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');

    const events = await count('usage_events');
    const conflict = await api(operator, 'POST', '/v1/usage', { ...event, quantity: 6_000 });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('idempotency_conflict');
    expect(await count('usage_events')).toBe(events);

    const days = await testApi.database.query<{ events: string; quantity_sum: string }>(
      `SELECT events, quantity_sum FROM usage_metric_day WHERE team_id = $1 AND metric = 'storage_bytes'`,
      [teamId],
    );
    expect(days.rows.map((row) => [Number(row.events), Number(row.quantity_sum)])).toEqual([[1, 5_000]]);
  });

  it('takes a batch all or nothing: one conflicting event refuses every event in it', async () => {
    const at = new Date(Date.now() - 3_600_000).toISOString();
    const batch = {
      events: [
        { team: teamId, metric: 'emails_sent', quantity: 3, at, idempotency_key: 'mail-1' },
        { team: teamId, metric: 'emails_sent', quantity: 4, at, idempotency_key: 'mail-2' },
      ],
    };
    const before = await count('usage_events');
    const refused = await api(operator, 'POST', '/v1/usage', {
      events: [...batch.events, { team: teamSlug, metric: 'storage_bytes', quantity: 1, idempotency_key: 'storage-1' }],
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/^events\.2\.idempotency_key/);
    expect(await count('usage_events')).toBe(before);

    const recorded = await api(operator, 'POST', '/v1/usage', batch);
    expect(recorded.status).toBe(201);
    expect(recorded.body.events).toHaveLength(2);
    const again = await api(operator, 'POST', '/v1/usage', batch);
    expect(again.body).toEqual(recorded.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await count('usage_events')).toBe(before + 2);
  });

  it('refuses bad input with a clear code and writes nothing', async () => {
    const before = await count('usage_events');
    const cases: [unknown, number, string][] = [
      [{ team: teamId, metric: 'Storage', quantity: 1, idempotency_key: 'x1' }, 400, 'validation_failed'],
      [{ team: teamId, metric: 'storage_bytes', quantity: -1, idempotency_key: 'x2' }, 400, 'validation_failed'],
      [{ team: teamId, metric: 'storage_bytes', quantity: 1.5, idempotency_key: 'x3' }, 400, 'validation_failed'],
      [{ team: teamId, metric: 'storage_bytes', quantity: 1 }, 400, 'validation_failed'],
      [{ team: teamId, metric: 'storage_bytes', quantity: 1, idempotency_key: 'has space' }, 400, 'validation_failed'],
      [{ events: [] }, 400, 'validation_failed'],
      [
        {
          events: Array.from({ length: 101 }, (_, i) => ({
            team: teamId,
            metric: 'a',
            quantity: 1,
            idempotency_key: `b${i}`,
          })),
        },
        400,
        'validation_failed',
      ],
      [
        {
          team: teamId,
          metric: 'storage_bytes',
          quantity: 1,
          at: new Date(Date.now() - 31 * 86_400_000).toISOString(),
          idempotency_key: 'x4',
        },
        400,
        'usage_event_out_of_range',
      ],
      [{ team: 'no-such-team', metric: 'storage_bytes', quantity: 1, idempotency_key: 'x5' }, 404, 'not_found'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await api(operator, 'POST', '/v1/usage', body);
      expect([answer.status, answer.body.error.code], JSON.stringify(body).slice(0, 80)).toEqual([status, code]);
    }
    expect(await count('usage_events')).toBe(before);
  });

  it('is for operators (usage:report): a team admin is refused', async () => {
    const answer = await api(admin, 'POST', '/v1/usage', {
      team: teamId,
      metric: 'storage_bytes',
      quantity: 1,
      idempotency_key: 'admin-1',
    });
    expect(answer.status).toBe(403);
    expect(answer.body.error.details).toEqual({ permission: 'usage:report' });
  });

  it('deduplicates a key for at least 30 days, then forgets it', async () => {
    const at = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000);
    const report = { teamId, metric: 'seats', quantity: 2, idempotencyKey: 'seats-old' };
    // Reported 29 days ago: still deduplicated after a prune.
    await reportUsage(testApi.database, { reports: [report], now: at(29) });
    expect(await pruneUsageIdempotencyKeys(testApi.database)).toBe(0);
    const [replayed] = await reportUsage(testApi.database, { reports: [report], now: at(29) });
    expect(replayed?.replayed).toBe(true);
    // Reported 36 days ago: pruned, so the key is free again.
    await reportUsage(testApi.database, { reports: [{ ...report, idempotencyKey: 'seats-older' }], now: at(36) });
    expect(await pruneUsageIdempotencyKeys(testApi.database)).toBe(1);
    const keys = await testApi.database.query(
      `SELECT 1 FROM usage_idempotency_keys WHERE idempotency_key = 'seats-older'`,
    );
    expect(keys.rows).toHaveLength(0);
  });
});

describe(`GET /v1/teams/:team/usage (${expectedDatabaseDriver})`, () => {
  beforeAll(async () => {
    // Counted usage goes through the real store and flusher, as the gateway's does.
    const store = createMemoryUsageCounterStore();
    const now = Date.now();
    const minute = now - (now % 60_000);
    const cell = (at: number, keyId: string, apiId: string, calls: number, overage = 0) => ({
      minute: at,
      teamId,
      keyId,
      apiId,
      counts: {
        ...emptyCounts(),
        calls,
        requestBytes: calls * 100,
        responseBytes: calls * 1_000,
        latencyUsSum: calls * 2_000,
        latencyUsMax: 3_000,
        status2xx: calls,
        overageCalls: overage,
      },
    });
    await store.add(
      [
        cell(minute, 'key-1', 'api-1', 10),
        cell(minute - 3_600_000, 'key-1', 'api-1', 5, 2),
        cell(minute, 'key-2', 'api-2', 1),
        { ...cell(minute, 'key-9', 'api-1', 50), teamId: 'another-team' },
      ],
      'usage-routes',
    );
    await flushUsage({ store, database: testApi.database });
  });

  const range = () => {
    const from = new Date(Date.now() - 2 * 86_400_000).toISOString();
    return `from=${encodeURIComponent(from)}`;
  };

  it("answers calls, bandwidth and overage by day, and the quota of the team's plan", async () => {
    const answer = await api(user, 'GET', `/v1/teams/${teamSlug}/usage?${range()}`);
    expect(answer.status).toBe(200);
    expect(answer.body.totals).toMatchObject({
      calls: 16,
      request_bytes: 1_600,
      response_bytes: 16_000,
      bandwidth_bytes: 17_600,
      overage_calls: 2,
      status: { '2xx': 16, '3xx': 0, '4xx': 0, '5xx': 0 },
      latency_ms_avg: 2,
      latency_ms_max: 3,
    });
    // The team has no subscription: the default plan's quota (usage-quota.test.ts covers the counting).
    expect(answer.body.quota).toMatchObject({ plan: 'free', limit: 10_000, overage_allowed: false });
    expect(answer.body.group_by).toBe('day');
    const summed = answer.body.periods.reduce((sum: number, period: { calls: number }) => sum + period.calls, 0);
    expect(summed).toBe(16);
    expect(answer.body.metrics.map((day: { metric: string }) => day.metric)).toContain('storage_bytes');
  });

  it('groups by hour and filters by API and key, and the hours add up to the days', async () => {
    const hours = await api(user, 'GET', `/v1/teams/${teamId}/usage?group_by=hour&${range()}`);
    expect(hours.body.totals.calls).toBe(16);
    expect(hours.body.periods.length).toBeGreaterThanOrEqual(2);
    const byApi = await api(user, 'GET', `/v1/teams/${teamId}/usage?api=api-2&${range()}`);
    expect(byApi.body.totals.calls).toBe(1);
    const byKey = await api(user, 'GET', `/v1/teams/${teamId}/usage?key=key-1&group_by=hour&${range()}`);
    expect(byKey.body.totals).toMatchObject({ calls: 15, overage_calls: 2 });
  });

  it('is readable with usage:read (a team user) and by no one outside the team', async () => {
    expect((await api(outsider, 'GET', `/v1/teams/${teamId}/usage`)).status).toBe(404);
    expect((await api(operator, 'GET', `/v1/teams/${teamId}/usage`)).status).toBe(200);
    // A revocation of usage:read takes it away from the user.
    const revoked = await api(admin, 'PATCH', `/v1/teams/${teamId}/members/${user.id}`, {
      revocations: ['usage:read'],
    });
    expect(revoked.status).toBe(204);
    const denied = await api(user, 'GET', `/v1/teams/${teamId}/usage`);
    expect(denied.status).toBe(403);
    expect(denied.body.error.details).toEqual({ permission: 'usage:read' });
    await api(admin, 'PATCH', `/v1/teams/${teamId}/members/${user.id}`, { revocations: [] });
  });

  it('refuses a bad range or grouping', async () => {
    const cases = [
      'group_by=week',
      'from=yesterday',
      'from=2026-02-01&to=2026-01-01',
      'group_by=hour&from=2026-01-01&to=2026-03-01',
    ];
    for (const query of cases) {
      const answer = await api(user, 'GET', `/v1/teams/${teamId}/usage?${query}`);
      expect([query, answer.status, answer.body.error.code]).toEqual([query, 400, 'validation_failed']);
    }
  });
});
