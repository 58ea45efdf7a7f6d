import { randomBytes } from 'node:crypto';
import { generateSync } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../src/audit/index.js';
import type { Database } from '../src/storage/database.js';
import { accountsOn, type SignedInAccount } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';
import type { MailFolder } from './support/mail.js';

let database: Database;
let mail: MailFolder;

let testApi: TestApi;
const { account, call: api } = accountsOn(() => testApi);

beforeAll(async () => {
  testApi = await startTestApi();
  ({ database, mail } = testApi);
});
afterAll(() => testApi.dispose());

/** The invitation token from the newest mail to `email`. */
async function invitationTokenFor(email: string): Promise<string> {
  const messages = (await mail.parsed()).filter((message) => message.to === email);
  const token = /tollgate teams accept (tgi_[A-Za-z0-9_-]+)/.exec(messages.at(-1)?.text ?? '')?.[1];
  if (!token) throw new Error(`no invitation mail for ${email}`);
  return token;
}

async function invite(admin: SignedInAccount, teamId: string, who: SignedInAccount, role: string): Promise<void> {
  expect((await api(admin, 'POST', `/v1/teams/${teamId}/invitations`, { email: who.email, role })).status).toBe(201);
  const accepted = await api(who, 'POST', '/v1/invitations/accept', { token: await invitationTokenFor(who.email) });
  expect(accepted.status).toBe(200);
  expect(accepted.body.role).toBe(role);
}

async function count(table: string): Promise<number> {
  const result = await database.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(result.rows[0]?.n);
}

describe(`teams and permissions over HTTP (${expectedDatabaseDriver})`, () => {
  let admin: SignedInAccount;
  let developer: SignedInAccount;
  let user: SignedInAccount;
  let outsider: SignedInAccount;
  let teamId: string;

  beforeAll(async () => {
    [admin, developer, user, outsider] = await Promise.all([
      account('admin'),
      account('developer'),
      account('user'),
      account('outsider'),
    ]);
    const created = await api(admin, 'POST', '/v1/teams', { name: `Acme ${randomBytes(3).toString('hex')}` });
    expect(created.status).toBe(201);
    teamId = created.body.id;
    await invite(admin, teamId, developer, 'developer');
    await invite(admin, teamId, user, 'user');
  });

  it('lists the members with their roles and the owner', async () => {
    const members = await api(user, 'GET', `/v1/teams/${teamId}/members`);
    expect(members.status).toBe(200);
    const roles = Object.fromEntries(
      members.body.members.map((m: { email: string; role: string }) => [m.email, m.role]),
    );
    expect(roles).toEqual({ [admin.email]: 'admin', [developer.email]: 'developer', [user.email]: 'user' });
    expect(members.body.members.find((m: { owner: boolean }) => m.owner).email).toBe(admin.email);
  });

  const matrix: [
    string,
    string,
    (ctx: { teamId: string; target: () => string }) => [string, unknown?],
    number,
    number,
    number,
    string?,
  ][] = [
    ['create an API key', 'POST', () => ['/keys', { name: 'ci' }], 201, 201, 403, 'api_keys'],
    ['list API keys', 'GET', () => ['/keys'], 200, 200, 200],
    [
      'invite a member',
      'POST',
      () => ['/invitations', { email: `new.${randomBytes(3).toString('hex')}@example.com` }],
      201,
      403,
      403,
      'team_invitations',
    ],
    ['read billing', 'GET', () => ['/billing'], 200, 403, 403],
    ['list members', 'GET', () => ['/members'], 200, 200, 200],
  ];

  it.each(matrix)(
    '%s: admin, developer and user get %s %s',
    async (_name, method, request, asAdmin, asDeveloper, asUser, table) => {
      for (const [who, expected] of [
        [admin, asAdmin],
        [developer, asDeveloper],
        [user, asUser],
      ] as const) {
        const [suffix, body] = request({ teamId, target: () => '' });
        const rowsBefore = table ? await count(table) : 0;
        const auditBefore = await count('audit_log');
        const answer = await api(who, method, `/v1/teams/${teamId}${suffix}`, body);
        expect(`${who.email}: ${answer.status}`).toBe(`${who.email}: ${expected}`);
        if (expected === 403) {
          expect(answer.body.error.code).toBe('forbidden');
          // Nothing written but the audit entry recording the refusal.
          if (table) expect(await count(table)).toBe(rowsBefore);
          expect(await count('audit_log')).toBe(auditBefore + 1);
          const last = await database.query<{
            action: string;
            outcome: string;
            actor_user_id: string;
            details: { permission: string };
          }>('SELECT action, outcome, actor_user_id, details FROM audit_log ORDER BY seq DESC LIMIT 1');
          expect(last.rows[0]).toMatchObject({ action: 'authz.denied', outcome: 'denied', actor_user_id: who.id });
        }
      }
    },
  );

  it('shows the API key once and stores only its hash', async () => {
    const created = await api(developer, 'POST', `/v1/teams/${teamId}/keys`, { name: 'worker' });
    expect(created.body.key).toMatch(/^tg_live_[A-Za-z0-9]{16}_[A-Za-z0-9]{43}$/);
    const secret = created.body.key.split('_')[3];
    const listed = await api(user, 'GET', `/v1/teams/${teamId}/keys`);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    const dump = await database.query<{ row: string }>('SELECT row_to_json(k)::text AS row FROM api_keys k');
    expect(dump.rows.map((row) => row.row).join('')).not.toContain(secret);
    expect((await api(user, 'DELETE', `/v1/teams/${teamId}/keys/${created.body.id}`)).status).toBe(403);
    expect((await api(developer, 'DELETE', `/v1/teams/${teamId}/keys/${created.body.id}`)).status).toBe(204);
  });

  it('hides the team from outsiders with 404', async () => {
    expect((await api(outsider, 'GET', `/v1/teams/${teamId}`)).status).toBe(404);
    expect((await api(outsider, 'POST', `/v1/teams/${teamId}/keys`, {})).status).toBe(404);
  });

  it('applies per-member grants and revocations on top of the role', async () => {
    expect(
      (await api(admin, 'PATCH', `/v1/teams/${teamId}/members/${user.id}`, { grants: ['billing:read'] })).status,
    ).toBe(204);
    expect((await api(user, 'GET', `/v1/teams/${teamId}/billing`)).status).toBe(200);
    expect(
      (await api(admin, 'PATCH', `/v1/teams/${teamId}/members/${developer.id}`, { revocations: ['keys:write'] }))
        .status,
    ).toBe(204);
    expect((await api(developer, 'POST', `/v1/teams/${teamId}/keys`, {})).status).toBe(403);
    const unknown = await api(admin, 'PATCH', `/v1/teams/${teamId}/members/${user.id}`, { grants: ['apis:manage'] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('validation_failed');
  });

  it('keeps an admin and an owner: the last admin cannot step down, the owner cannot leave', async () => {
    const demote = await api(admin, 'PATCH', `/v1/teams/${teamId}/members/${admin.id}`, { role: 'user' });
    expect(demote.status).toBe(409);
    expect(demote.body.error.code).toBe('last_admin');
    const leave = await api(admin, 'DELETE', `/v1/teams/${teamId}/members/${admin.id}`);
    expect(leave.body.error.code).toBe('owner_cannot_leave');
    expect((await api(admin, 'POST', `/v1/teams/${teamId}/transfer`, { user_id: developer.id })).status).toBe(204);
    expect((await api(admin, 'DELETE', `/v1/teams/${teamId}/members/${admin.id}`)).status).toBe(204);
    const members = await api(developer, 'GET', `/v1/teams/${teamId}/members`);
    expect(members.body.members.find((m: { owner: boolean }) => m.owner).email).toBe(developer.email);
    expect(await verifyAuditChain(database)).toMatchObject({ ok: true });
  });
});

describe(`invitations (${expectedDatabaseDriver})`, () => {
  it('work once, only for the invited address, and not after they expire or are replaced', async () => {
    const [admin, invitee, other] = await Promise.all([account('owner'), account('invitee'), account('other')]);
    const team = (await api(admin, 'POST', '/v1/teams', { name: `Beta ${randomBytes(3).toString('hex')}` })).body;

    await api(admin, 'POST', `/v1/teams/${team.id}/invitations`, { email: invitee.email, role: 'developer' });
    const first = await invitationTokenFor(invitee.email);
    await api(admin, 'POST', `/v1/teams/${team.id}/invitations`, { email: invitee.email, role: 'user' });
    const second = await invitationTokenFor(invitee.email);
    expect(second).not.toBe(first);

    const replaced = await api(invitee, 'POST', '/v1/invitations/accept', { token: first });
    expect(replaced.status).toBe(400);
    expect(replaced.body.error.code).toBe('invitation_invalid');

    const wrongPerson = await api(other, 'POST', '/v1/invitations/accept', { token: second });
    expect(wrongPerson.body.error.code).toBe('invitation_invalid');
    expect(wrongPerson.body.error.message).toContain(invitee.email);

    expect((await api(invitee, 'POST', '/v1/invitations/accept', { token: second })).status).toBe(200);
    const again = await api(invitee, 'POST', '/v1/invitations/accept', { token: second });
    expect(again.body.error.code).toBe('invitation_invalid');

    await api(admin, 'POST', `/v1/teams/${team.id}/invitations`, { email: other.email, role: 'user' });
    const late = await invitationTokenFor(other.email);
    await database.query(
      `UPDATE team_invitations SET expires_at = now() - interval '1 second' WHERE lower(email) = lower($1)`,
      [other.email],
    );
    const expired = await api(other, 'POST', '/v1/invitations/accept', { token: late });
    expect(expired.body.error.code).toBe('invitation_invalid');
    expect((await api(other, 'GET', `/v1/teams/${team.id}`)).status).toBe(404);

    const stored = await database.query<{ row: string }>('SELECT row_to_json(i)::text AS row FROM team_invitations i');
    const text = stored.rows.map((row) => row.row).join('');
    for (const token of [first, second, late]) expect(text).not.toContain(token.slice(4));
  });

  it('refuses to invite a current member', async () => {
    const admin = await account('solo');
    const team = (await api(admin, 'POST', '/v1/teams', { name: `Solo ${randomBytes(3).toString('hex')}` })).body;
    const answer = await api(admin, 'POST', `/v1/teams/${team.id}/invitations`, { email: admin.email.toUpperCase() });
    expect(answer.status).toBe(409);
    expect(answer.body.error.code).toBe('already_member');
  });
});

describe(`teams that require two-factor authentication (${expectedDatabaseDriver})`, () => {
  async function enableTotp(who: SignedInAccount): Promise<void> {
    const enrol = await api(who, 'POST', '/v1/me/2fa/totp');
    const confirmed = await api(who, 'POST', '/v1/me/2fa/totp/confirm', {
      code: generateSync({ secret: enrol.body.secret }),
    });
    expect(confirmed.status).toBe(200);
  }

  it('let members without a second factor only see the team until they turn one on', async () => {
    const [admin, developer] = await Promise.all([account('strict-admin'), account('strict-dev')]);
    const team = (await api(admin, 'POST', '/v1/teams', { name: `Strict ${randomBytes(3).toString('hex')}` })).body;
    await invite(admin, team.id, developer, 'developer');

    const early = await api(admin, 'PATCH', `/v1/teams/${team.id}`, { require_two_factor: true });
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('two_factor_not_enabled');

    await enableTotp(admin);
    const set = await api(admin, 'PATCH', `/v1/teams/${team.id}`, { require_two_factor: true });
    expect(set.status).toBe(200);
    expect(set.body.require_two_factor).toBe(true);

    const blocked = await api(developer, 'GET', `/v1/teams/${team.id}/keys`);
    expect(blocked.status).toBe(403);
    expect(blocked.body.error.code).toBe('two_factor_required_by_team');
    expect((await api(developer, 'GET', `/v1/teams/${team.id}`)).status).toBe(200);

    await enableTotp(developer);
    expect((await api(developer, 'GET', `/v1/teams/${team.id}/keys`)).status).toBe(200);
  });
});
