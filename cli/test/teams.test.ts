import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('teams');
  ({ env, dir } = api);
});

afterAll(() => api?.dispose());

describe(`tollgate teams (${expectedDatabaseDriver})`, () => {
  it('needs a team to act on, and names the ways to give one', async () => {
    const members = await runCli(['teams', 'members'], env);
    expect(members.code).toBe(2);
    expect(members.stderr).toMatch(
      /^no_team: no team chosen\nhint: pass --team <slug>, or run `tollgate teams switch <slug>`/,
    );
  });

  it('creates a team that becomes current, lists it, and shows its members', async () => {
    const created = await runCli(['teams', 'create', 'Acme Corp', '--json'], env);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ slug: 'acme-corp', name: 'Acme Corp' });
    const list = await runCli(['teams', 'list'], env);
    expect(list.stdout).toMatch(/^\*\tacme-corp\tAcme Corp\tadmin$/m);
    const members = await runCli(['teams', 'members', '--json'], env);
    expect(JSON.parse(members.stdout).members).toEqual([
      expect.objectContaining({ email: 'admin@localhost', role: 'admin', owner: true }),
    ]);
  });

  it('invites by email: the message with the token is written to the mail folder', async () => {
    const invited = await runCli(['teams', 'invite', 'grace@example.com', '--role', 'developer'], env);
    expect(invited.code).toBe(0);
    expect(invited.stdout).toContain('Invited grace@example.com as developer');
    const files = (await readdir(join(dir, 'mail'))).filter((file) => file.endsWith('.eml'));
    expect(files).toHaveLength(1);
    const parsed = await simpleParser(await readFile(join(dir, 'mail', files[0] ?? ''), 'utf8'));
    const message = parsed.text ?? '';
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.text : '').toBe('grace@example.com');
    expect(message).toMatch(/tollgate teams accept tgi_[A-Za-z0-9_-]{43}/);
    // The link points at this server, never at a header the sender chose.
    expect(message).toMatch(/POST http:\/\/127\.0\.0\.1:\d+\/v1\/invitations\/accept/);
  });

  it('switches only to a team you can see', async () => {
    const other = await runCli(['teams', 'switch', 'no-such-team'], env);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^not_found: no such team/);
    expect((await runCli(['teams', 'switch', 'acme-corp'], env)).code).toBe(0);
  });

  it('refuses a role change that would leave the team without an admin', async () => {
    const demote = await runCli(['teams', 'role', 'admin@localhost', 'user'], env);
    expect(demote.code).toBe(1);
    expect(demote.stderr).toMatch(/^last_admin: a team needs at least one admin/);
  });
});

describe('stored credentials', () => {
  const file = () => join(dir, 'config', 'credentials.json');

  it('refresh an expired access token by themselves, rotating the refresh token', async () => {
    const before = JSON.parse(await readFile(file(), 'utf8'));
    before.profiles.default.access_token_expires_at = new Date(Date.now() - 1_000).toISOString();
    await writeFile(file(), JSON.stringify(before), { mode: 0o600 });
    const whoami = await runCli(['whoami'], env);
    expect(whoami.code).toBe(0);
    expect(whoami.stdout.trim()).toBe('admin@localhost (operator)');
    const after = JSON.parse(await readFile(file(), 'utf8'));
    expect(after.profiles.default.refresh_token).not.toBe(before.profiles.default.refresh_token);
    expect(new Date(after.profiles.default.access_token_expires_at).getTime()).toBeGreaterThan(Date.now());
  });

  it('refresh once and retry when the API refuses an access token it had accepted', async () => {
    const stored = JSON.parse(await readFile(file(), 'utf8'));
    stored.profiles.default.access_token = 'not-a-valid-token';
    await writeFile(file(), JSON.stringify(stored), { mode: 0o600 });
    expect((await runCli(['whoami'], env)).code).toBe(0);
  });

  it('sessions revoke needs an id or --all', async () => {
    const result = await runCli(['sessions', 'revoke'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^usage_error: give a session id or --all/);
  });
});
