import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyring } from '../src/secrets/master-keyring.js';
import { deliverDueWebhooks } from '../src/webhooks/webhook-delivery.js';
import { enqueueTeamEvent } from '../src/webhooks/webhook-events.js';
import { accountsOn, callApi, type SignedInAccount, signUp } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver, silentLogger } from './support/backends.js';

const keyring = createKeyring({ current: randomBytes(32) });
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

/** What a receiver got: each request with its raw body. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
/** The status each path answers with; 200 when unset. */
const answers = new Map<string, number>();
let receiver: Server;
let receiverUrl: string;

/** The check docs/webhooks.md tells receivers to make, written out from the documentation. */
function verifiesAsDocumented(secret: string, request: Received): boolean {
  const header = String(request.headers['tollgate-signature'] ?? '');
  const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
  const v1 = /(?:^|,)v1=([0-9a-f]{64})/.exec(header)?.[1];
  if (!t || !v1) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${request.body}`).digest('hex');
  return expected === v1 && Math.abs(Date.now() / 1000 - Number(t)) < 300;
}

const run = (now?: Date) =>
  deliverDueWebhooks({
    database: testApi.database,
    keyring,
    logger: silentLogger(),
    allowPrivate: true,
    ...(now ? { now: () => now } : {}),
  });

let admin: SignedInAccount;
let developer: SignedInAccount;
let user: SignedInAccount;
let teamId: string;
let team: string;
let okEndpoint: { id: string; secret: string };

beforeAll(async () => {
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      received.push({ path, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = answers.get(path) ?? 200;
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(status >= 300 ? `broken ${'x'.repeat(5000)}` : 'ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  testApi = await startTestApi({ keyring, webhooksAllowPrivate: true });
  [admin, developer, user] = await Promise.all([account('admin'), account('developer'), account('user')]);
  const created = await api(admin, 'POST', '/v1/teams', { name: `Hooks ${randomBytes(3).toString('hex')}` });
  teamId = created.body.id;
  team = `/v1/teams/${teamId}`;
  for (const [who, role] of [
    [developer, 'developer'],
    [user, 'user'],
  ] as const) {
    expect((await api(admin, 'POST', `${team}/invitations`, { email: who.email, role })).status).toBe(201);
    const token = await invitationTokenFor(who.email);
    expect((await api(who, 'POST', '/v1/invitations/accept', { token })).status).toBe(200);
  }
});

afterAll(async () => {
  await testApi?.dispose();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe(`outgoing webhooks (${expectedDatabaseDriver})`, () => {
  it('adds an endpoint, shows its secret once, and keeps it sealed at rest', async () => {
    const created = await api(developer, 'POST', `${team}/webhooks`, {
      url: `${receiverUrl}/ok`,
      events: ['key.rotated', 'invoice.paid'],
      description: 'billing system',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      url: `${receiverUrl}/ok`,
      events: ['key.rotated', 'invoice.paid'],
      description: 'billing system',
      enabled: true,
    });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    okEndpoint = { id: created.body.id, secret: created.body.secret };

    const listed = await api(developer, 'GET', `${team}/webhooks`);
    expect(listed.body.endpoints).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(okEndpoint.secret);
    const stored = await testApi.database.query<{ secret_sealed: string }>(
      'SELECT secret_sealed FROM webhook_endpoints WHERE id = $1',
      [okEndpoint.id],
    );
    expect(stored.rows[0]?.secret_sealed).toMatch(/^tgs1\./);
    expect(stored.rows[0]?.secret_sealed).not.toContain(okEndpoint.secret);
    const audit = await testApi.database.query<{ action: string }>(
      'SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1',
    );
    expect(audit.rows[0]?.action).toBe('webhook_endpoint.created');
  });

  it('delivers exactly one signed key.rotated for a rotated key, without the secret', async () => {
    const key = await api(developer, 'POST', `${team}/keys`, { name: 'hooked' });
    expect(key.status).toBe(201);
    const rotated = await api(developer, 'POST', `${team}/keys/${key.body.id}/rotate`, { grace: '0' });
    expect(rotated.status).toBe(200);
    const before = received.length;
    const report = await run();
    expect(report).toMatchObject({ attempted: 1, succeeded: 1 });
    expect(await run()).toMatchObject({ attempted: 0 });
    const got = received.slice(before);
    expect(got).toHaveLength(1);
    const request = got[0] as Received;
    expect(verifiesAsDocumented(okEndpoint.secret, request)).toBe(true);
    expect(verifiesAsDocumented(`${okEndpoint.secret}x`, request)).toBe(false);
    const body = JSON.parse(request.body);
    expect(body).toMatchObject({
      type: 'key.rotated',
      team_id: teamId,
      data: { key: { id: key.body.id, prefix: key.body.prefix, name: 'hooked' } },
    });
    expect(request.headers['tollgate-event-id']).toBe(body.id);
    expect(request.headers['tollgate-event-type']).toBe('key.rotated');
    expect(request.body).not.toContain(rotated.body.key.split('_')[3]);
    const deliveries = await api(developer, 'GET', `${team}/webhook-deliveries?status=succeeded`);
    expect(deliveries.body.deliveries).toHaveLength(1);
    expect(deliveries.body.deliveries[0]).toMatchObject({ event_type: 'key.rotated', attempt_count: 1 });
  });

  it('stores no event when the change rolls back', async () => {
    const events = await count('webhook_events');
    await expect(
      testApi.database.transaction(async (tx) => {
        await enqueueTeamEvent(tx, { teamId, type: 'invoice.paid', data: { invoice_id: 'in_1' } });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await count('webhook_events')).toBe(events);
  });

  it('retries a failing receiver with growing delays, exhausts it after 3 days, and replays it', async () => {
    answers.set('/fail', 500);
    const created = await api(developer, 'POST', `${team}/webhooks`, {
      url: `${receiverUrl}/fail`,
      events: ['quota.exhausted'],
    });
    expect(created.status).toBe(201);
    const enqueued = await testApi.database.transaction((tx) =>
      enqueueTeamEvent(tx, { teamId, type: 'quota.exhausted', data: { metric: 'calls' } }),
    );
    expect(enqueued.deliveryIds).toHaveLength(1);
    const deliveryId = enqueued.deliveryIds[0] as string;
    const delivery = async () => (await api(developer, 'GET', `${team}/webhook-deliveries/${deliveryId}`)).body;

    let clock = new Date(Date.now() + 1_000);
    const gaps: number[] = [];
    expect(await run(clock)).toMatchObject({ attempted: 1, failed: 1 });
    // Not due again before its delay.
    expect(await run(new Date(clock.getTime() + 10_000))).toMatchObject({ attempted: 0 });
    for (let step = 0; step < 100; step++) {
      const state = await delivery();
      if (state.status === 'exhausted') break;
      expect(state.status).toBe('failed');
      const next = new Date(state.next_attempt_at);
      gaps.push(next.getTime() - clock.getTime());
      clock = next;
      await run(clock);
    }
    const final = await delivery();
    expect(final.status).toBe('exhausted');
    expect(final.next_attempt_at).toBeNull();
    expect(gaps.slice(0, 5)).toEqual([30_000, 60_000, 120_000, 240_000, 480_000]);
    expect(Math.max(...gaps)).toBe(6 * 3_600_000);
    for (let index = 1; index < gaps.length; index++) {
      expect(gaps[index]).toBeGreaterThanOrEqual(gaps[index - 1] as number);
    }
    expect(final.attempts).toHaveLength(final.attempt_count);
    expect(final.attempts[0]).toMatchObject({ status_code: 500, error: 'the endpoint answered 500' });
    expect(final.attempts[0].response_body.length).toBe(2048);
    const lastAttempt = Date.parse(final.attempts.at(-1).attempted_at);
    expect(lastAttempt).toBeLessThanOrEqual(Date.parse(final.give_up_at));
    expect(Date.parse(final.give_up_at) - Date.parse(final.created_at)).toBe(3 * 86_400_000);
    expect((await api(developer, 'GET', `${team}/webhook-deliveries?status=exhausted`)).body.deliveries).toHaveLength(
      1,
    );

    // The receiver is fixed: a replay sends the same event again, as a new delivery.
    answers.set('/fail', 200);
    const replay = await api(developer, 'POST', `${team}/webhook-deliveries/${deliveryId}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ status: 'pending', replay_of: deliveryId, event_id: enqueued.eventId });
    const before = received.length;
    expect(await run()).toMatchObject({ attempted: 1, succeeded: 1 });
    const got = received.slice(before);
    expect(got.map((request) => request.headers['tollgate-event-id'])).toEqual([enqueued.eventId]);

    const again = await api(developer, 'POST', `${team}/webhook-events/${enqueued.eventId}/replay`);
    expect(again.status).toBe(202);
    expect(again.body.deliveries).toHaveLength(1);
    expect(await run()).toMatchObject({ attempted: 1, succeeded: 1 });
  });

  it('sends a ping to one endpoint on test', async () => {
    const queued = await api(developer, 'POST', `${team}/webhooks/${okEndpoint.id}/test`);
    expect(queued.status).toBe(202);
    const before = received.length;
    await run();
    const got = received.slice(before);
    expect(got).toHaveLength(1);
    expect(JSON.parse((got[0] as Received).body)).toMatchObject({ type: 'ping', id: queued.body.event_id });
  });

  it('never sends one delivery twice when two runs go at once', async () => {
    const events = await testApi.database.transaction(async (tx) => {
      const ids: string[] = [];
      for (let index = 0; index < 30; index++) {
        ids.push((await enqueueTeamEvent(tx, { teamId, type: 'invoice.paid', data: { index } })).eventId);
      }
      return ids;
    });
    const before = received.length;
    const reports = await Promise.all([run(), run(), run()]);
    expect(reports.reduce((sum, report) => sum + report.succeeded, 0)).toBe(30);
    const ids = received.slice(before).map((request) => request.headers['tollgate-event-id']);
    expect(ids).toHaveLength(30);
    expect(new Set(ids)).toEqual(new Set(events));
  });

  it('refuses bad input with a 4xx and writes nothing', async () => {
    const endpoints = await count('webhook_endpoints');
    const audits = await count('audit_log');
    const ftp = await api(developer, 'POST', `${team}/webhooks`, {
      url: 'ftp://example.com/hook',
      events: ['invoice.paid'],
    });
    expect(ftp.status).toBe(400);
    expect(ftp.body.error).toMatchObject({ code: 'validation_failed', message: expect.stringContaining('http') });
    const unknown = await api(developer, 'POST', `${team}/webhooks`, {
      url: `${receiverUrl}/x`,
      events: ['invoice.lost'],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/^events\.0: /);
    const none = await api(developer, 'POST', `${team}/webhooks`, { url: `${receiverUrl}/x`, events: [] });
    expect(none.status).toBe(400);

    const other = await api(admin, 'POST', '/v1/teams', { name: `Other ${randomBytes(3).toString('hex')}` });
    const otherTeam = `/v1/teams/${other.body.id}`;
    const deliveryId = (await api(developer, 'GET', `${team}/webhook-deliveries?limit=1`)).body.deliveries[0].id;
    for (const [method, path] of [
      ['GET', `${otherTeam}/webhooks/${okEndpoint.id}`],
      ['DELETE', `${otherTeam}/webhooks/${okEndpoint.id}`],
      ['POST', `${otherTeam}/webhooks/${okEndpoint.id}/test`],
      ['GET', `${otherTeam}/webhook-deliveries/${deliveryId}`],
      ['POST', `${otherTeam}/webhook-deliveries/${deliveryId}/replay`],
      ['GET', `${team}/webhooks/not-an-id`],
    ] as const) {
      const answer = await api(admin, method, path);
      expect(answer.status, `${method} ${path}`).toBe(404);
    }
    const badFilter = await api(developer, 'GET', `${team}/webhook-deliveries?status=lost`);
    expect(badFilter.status).toBe(400);
    expect(await count('webhook_endpoints')).toBe(endpoints);
    // Only the team created above was audited.
    expect(await count('audit_log')).toBe(audits + 1);
  });

  it('refuses a private or loopback URL unless the setting allows it', async () => {
    const strict = await startTestApi();
    try {
      const owner = await signUp(strict, 'strict');
      const created = await callApi(strict, owner, 'POST', '/v1/teams', { name: 'Strict' });
      for (const url of [
        'http://127.0.0.1:9/hook',
        'http://10.1.2.3/hook',
        'http://[::1]/hook',
        'http://localhost/x',
      ]) {
        const refused = await callApi(strict, owner, 'POST', `/v1/teams/${created.body.id}/webhooks`, {
          url,
          events: ['invoice.paid'],
        });
        expect(refused.status, url).toBe(400);
        expect(refused.body.error.message).toMatch(/private or loopback/);
      }
      const rows = await strict.database.query<{ n: string }>('SELECT count(*) AS n FROM webhook_endpoints');
      expect(Number(rows.rows[0]?.n)).toBe(0);
    } finally {
      await strict.dispose();
    }
  });

  it('answers 403 to a member without the permission', async () => {
    expect((await api(user, 'GET', `${team}/webhooks`)).status).toBe(403);
    expect(
      (await api(user, 'POST', `${team}/webhooks`, { url: `${receiverUrl}/u`, events: ['invoice.paid'] })).status,
    ).toBe(403);
    expect((await api(user, 'GET', `${team}/webhook-deliveries`)).status).toBe(403);
    expect((await api(user, 'DELETE', `${team}/webhooks/${okEndpoint.id}`)).status).toBe(403);
    expect((await api(developer, 'DELETE', `${team}/webhooks/${okEndpoint.id}`)).status).toBe(204);
    expect((await api(developer, 'GET', `${team}/webhooks/${okEndpoint.id}`)).status).toBe(404);
  });
});
