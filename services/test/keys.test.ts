import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/apis/apis.js';
import { createMemoryKeyEvents, type KeyEvent } from '../src/keys/key-events.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';

const keyEvents = createMemoryKeyEvents();
const events: KeyEvent[] = [];
keyEvents.subscribe((event) => events.push(event));
let testApi: TestApi;
const { account, call: api } = accountsOn(() => testApi);

/** The invitation token from the newest mail to `email`. */
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

async function lastAudit(): Promise<{ action: string; target_id: string; details: Record<string, unknown> }> {
  const result = await testApi.database.query<{
    action: string;
    target_id: string;
    details: Record<string, unknown>;
  }>('SELECT action, target_id, details FROM audit_log ORDER BY seq DESC LIMIT 1');
  return result.rows[0] as { action: string; target_id: string; details: Record<string, unknown> };
}

let admin: SignedInAccount;
let developer: SignedInAccount;
let user: SignedInAccount;
let team: string;
let weatherId: string;

beforeAll(async () => {
  testApi = await startTestApi({ keyEvents });
  [admin, developer, user] = await Promise.all([account('admin'), account('developer'), account('user')]);
  const created = await api(admin, 'POST', '/v1/teams', { name: `Keys ${randomBytes(3).toString('hex')}` });
  team = `/v1/teams/${created.body.id}`;
  for (const [who, role] of [
    [developer, 'developer'],
    [user, 'user'],
  ] as const) {
    expect((await api(admin, 'POST', `${team}/invitations`, { email: who.email, role })).status).toBe(201);
    const token = await invitationTokenFor(who.email);
    expect((await api(who, 'POST', '/v1/invitations/accept', { token })).status).toBe(200);
  }
  const weather = await testApi.database.transaction((tx) =>
    createApi(tx, { slug: 'weather', name: 'Weather', upstreams: ['http://127.0.0.1:9/'] }),
  );
  weatherId = weather.api.id;
  await testApi.database.transaction((tx) =>
    createApi(tx, { slug: 'maps', name: 'Maps', upstreams: ['http://127.0.0.1:9/'] }),
  );
});
afterAll(async () => {
  await testApi?.dispose();
  await keyEvents.close();
});

describe(`API keys over HTTP (${expectedDatabaseDriver})`, () => {
  it('creates a key with its options, shows it once, and lists and shows it without the secret', async () => {
    const created = await api(developer, 'POST', `${team}/keys`, {
      name: 'billing worker',
      apis: ['weather', weatherId],
      methods: ['get', 'POST'],
      allowed_cidrs: ['10.0.0.0/8', '2001:DB8::/32', '203.0.113.7'],
      expires_in: '90d',
      limits: { per_second: 5, per_hour: 100 },
    });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^tg_live_[A-Za-z0-9]{16}_[A-Za-z0-9]{43}$/);
    expect(created.body).toMatchObject({
      name: 'billing worker',
      mode: 'live',
      owner_user_id: developer.id,
      apis: [{ id: weatherId, slug: 'weather' }],
      methods: ['GET', 'POST'],
      allowed_cidrs: ['10.0.0.0/8', '2001:db8::/32', '203.0.113.7/32'],
      limits: { per_second: 5, per_hour: 100 },
      expired: false,
      revoked_at: null,
      last_used_at: null,
    });
    expect(created.body.prefix).toBe(created.body.key.split('_').slice(0, 3).join('_'));
    const days = (Date.parse(created.body.expires_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);

    const secret = created.body.key.split('_')[3];
    const listed = await api(user, 'GET', `${team}/keys`);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    const { key: _shownOnce, ...withoutSecret } = created.body;
    expect(listed.body.keys.find((key: { id: string }) => key.id === created.body.id)).toEqual(withoutSecret);
    for (const ref of [created.body.id, created.body.prefix]) {
      const shown = await api(user, 'GET', `${team}/keys/${ref}`);
      expect(shown.status).toBe(200);
      expect(shown.body).toEqual(withoutSecret);
    }
    expect((await api(user, 'GET', `${team}/keys/tg_live_nosuchkey00000000`)).status).toBe(404);

    const audit = await lastAudit();
    expect(audit).toMatchObject({ action: 'key.created', target_id: created.body.id });
    expect(audit.details).toMatchObject({ methods: ['GET', 'POST'], limits: { per_second: 5, per_hour: 100 } });
    expect(JSON.stringify(audit)).not.toContain(secret);
  });

  it('makes test-mode keys and team-owned keys', async () => {
    const created = await api(developer, 'POST', `${team}/keys`, { mode: 'test', team_owned: true });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^tg_test_/);
    expect(created.body).toMatchObject({ mode: 'test', owner_user_id: null, apis: [], methods: [], expires_at: null });
  });

  const invalid: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown API', { apis: ['weather', 'nope'] }, /^apis: no API named nope$/],
    ['an invalid CIDR', { allowed_cidrs: ['10.0.0.0/33'] }, /^allowed_cidrs\.0: .*prefix length/],
    ['host bits in a CIDR', { allowed_cidrs: ['10.0.0.1/8'] }, /did you mean 10\.0\.0\.0\/8\?/],
    ['a hostname for a CIDR', { allowed_cidrs: ['example.com'] }, /not an IPv4 or IPv6 address/],
    ['an unknown method', { methods: ['GET', 'BREW'] }, /^methods\.1: must be one of GET/],
    ['a negative limit', { limits: { per_second: -1 } }, /^limits\.per_second: /],
    ['a fractional limit', { limits: { per_hour: 1.5 } }, /^limits\.per_hour: /],
    ['an unknown limit window', { limits: { per_week: 5 } }, /limits/],
    ['a malformed expiry', { expires_in: '3 months' }, /^expires_in: /],
    ['a zero expiry', { expires_in: '0d' }, /^expires_in: /],
    ['an unknown mode', { mode: 'staging' }, /^mode: /],
    ['a name with control characters', { name: 'a\u001b[31mb' }, /^name: /],
  ];
  it.each(invalid)('refuses %s with validation_failed and writes nothing', async (_what, body, message) => {
    const [keysBefore, linksBefore, auditBefore] = [
      await count('api_keys'),
      await count('api_key_apis'),
      await count('audit_log'),
    ];
    const answer = await api(developer, 'POST', `${team}/keys`, body);
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('validation_failed');
    expect(answer.body.error.message).toMatch(message);
    expect([await count('api_keys'), await count('api_key_apis'), await count('audit_log')]).toEqual([
      keysBefore,
      linksBefore,
      auditBefore,
    ]);
  });

  it('rotates a key: a new secret shown once, the same prefix, the old secret kept for the grace', async () => {
    const created = await api(developer, 'POST', `${team}/keys`, { name: 'rotating' });
    events.length = 0;
    const rotated = await api(developer, 'POST', `${team}/keys/${created.body.id}/rotate`, { grace: '2h' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.prefix).toBe(created.body.prefix);
    expect(rotated.body.key).not.toBe(created.body.key);
    expect(rotated.body.key.startsWith(`${created.body.prefix}_`)).toBe(true);
    const graceLeft = Date.parse(rotated.body.previous_secret_expires_at) - Date.now();
    expect(graceLeft).toBeGreaterThan(2 * 3_600_000 - 60_000);
    expect(graceLeft).toBeLessThanOrEqual(2 * 3_600_000);
    expect(rotated.body.rotated_at).not.toBeNull();
    const lookupId = created.body.prefix.split('_')[2];
    expect(events).toEqual([{ type: 'invalidate', lookupId }]);
    expect(await lastAudit()).toMatchObject({ action: 'key.rotated', details: { grace_seconds: 7200 } });

    const rows = await testApi.database.query<{ previous: boolean }>(
      'SELECT previous_secret_sha256 IS NOT NULL AS previous FROM api_keys WHERE id = $1',
      [created.body.id],
    );
    expect(rows.rows[0]?.previous).toBe(true);

    const noGrace = await api(developer, 'POST', `${team}/keys/${created.body.id}/rotate`, { grace: '0' });
    expect(noGrace.status).toBe(200);
    expect(noGrace.body.previous_secret_expires_at).toBeNull();
    const defaultGrace = await api(developer, 'POST', `${team}/keys/${created.body.id}/rotate`, {});
    expect(Date.parse(defaultGrace.body.previous_secret_expires_at) - Date.now()).toBeGreaterThan(23.9 * 3_600_000);

    const auditBefore = await count('audit_log');
    for (const grace of ['31d', '-1h', 'soon']) {
      const refused = await api(developer, 'POST', `${team}/keys/${created.body.id}/rotate`, { grace });
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('validation_failed');
    }
    expect(await count('audit_log')).toBe(auditBefore);
  });

  it('revokes a key once, announces it to the gateways, and will not rotate it afterwards', async () => {
    const created = await api(developer, 'POST', `${team}/keys`, { name: 'short-lived' });
    events.length = 0;
    expect((await api(developer, 'DELETE', `${team}/keys/${created.body.id}`)).status).toBe(204);
    expect(events).toEqual([{ type: 'invalidate', lookupId: created.body.prefix.split('_')[2] }]);
    expect(await lastAudit()).toMatchObject({ action: 'key.revoked', target_id: created.body.id });
    const again = await api(developer, 'DELETE', `${team}/keys/${created.body.id}`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('not_found');
    expect((await api(developer, 'POST', `${team}/keys/${created.body.id}/rotate`, {})).status).toBe(404);
    const shown = await api(user, 'GET', `${team}/keys/${created.body.id}`);
    expect(shown.body.revoked_at).not.toBeNull();
  });

  it('lets a user read keys but not create, rotate or revoke them; developers and admins may', async () => {
    const target = await api(admin, 'POST', `${team}/keys`, { name: 'target' });
    expect(target.status).toBe(201);
    const matrix: [string, string, unknown, number, number, number][] = [
      ['POST', '/keys', { name: 'm' }, 201, 201, 403],
      ['GET', '/keys', undefined, 200, 200, 200],
      ['GET', `/keys/${target.body.id}`, undefined, 200, 200, 200],
      ['POST', `/keys/${target.body.id}/rotate`, { grace: '0' }, 200, 200, 403],
    ];
    for (const [method, path, body, ...expected] of matrix) {
      const statuses = [];
      for (const who of [admin, developer, user])
        statuses.push((await api(who, method, `${team}${path}`, body)).status);
      expect(`${method} ${path}: ${statuses.join(' ')}`).toBe(`${method} ${path}: ${expected.join(' ')}`);
    }
    const keysBefore = await count('api_keys');
    const refused = await api(user, 'DELETE', `${team}/keys/${target.body.id}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    expect(await count('api_keys')).toBe(keysBefore);
    expect((await api(user, 'GET', `${team}/keys/${target.body.id}`)).body.revoked_at).toBeNull();
    expect((await api(developer, 'DELETE', `${team}/keys/${target.body.id}`)).status).toBe(204);
  });
});
