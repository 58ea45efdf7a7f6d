import { mkdtemp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

let dir: string;
/** The operator's CLI, signed in by `tollgate start`. */
let env: NodeJS.ProcessEnv;
let apiUrl: string;
let api: RunningApi;

beforeAll(async () => {
  api = await startApi('tokens');
  ({ env, dir, apiUrl } = api);
});

afterAll(() => api?.dispose());

/** A CI job: a config dir with no credentials at all, only TOLLGATE_TOKEN and the API URL. */
async function ciEnv(token: string): Promise<NodeJS.ProcessEnv> {
  const configDir = await mkdtemp(join(dir, 'ci-config-'));
  return cliEnv({ TOLLGATE_CONFIG_DIR: configDir, TOLLGATE_TOKEN: token, TOLLGATE_API_URL: apiUrl });
}

describe(`tollgate tokens (${expectedDatabaseDriver})`, () => {
  it('creates a token printed alone on stdout, which works as TOLLGATE_TOKEN without credentials; revoked, it exits 4', async () => {
    const created = await runCli(['tokens', 'create', '--name', 'ci'], env);
    expect(created.code).toBe(0);
    // Only the token on stdout, so TOKEN=$(tollgate tokens create ...) works; the rest on stderr.
    expect(created.stdout).toMatch(/^tgpat_[A-Za-z0-9_-]{43}\n$/);
    const token = created.stdout.trim();
    expect(created.stderr).toMatch(
      /^Created the personal access token "ci" \(tgpat_.{6}\.\.\., id [0-9a-f-]{36}; expires \d{4}-/,
    );
    expect(created.stderr).toContain('shown this once');

    const ci = await ciEnv(token);
    const whoami = await runCli(['whoami', '--json'], ci);
    expect(whoami.code).toBe(0);
    expect(JSON.parse(whoami.stdout)).toMatchObject({
      email: 'admin@localhost',
      authenticated_via: 'token',
      session_id: null,
    });
    // Nothing was written to the CI job's config dir.
    expect(await readdir(ci.TOLLGATE_CONFIG_DIR ?? '')).toEqual([]);

    const status = await runCli(['auth', 'status', '--json'], ci);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual({
      logged_in: true,
      source: 'TOLLGATE_TOKEN',
      token_type: 'personal_access_token',
    });
    expect((await runCli(['auth', 'status'], ci)).stdout).toBe(
      `Using the personal access token in TOLLGATE_TOKEN (${token.slice(0, 12)}...).\n`,
    );

    const listed = await runCli(['tokens', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    const { tokens } = JSON.parse(listed.stdout) as { tokens: { id: string; name: string; last_used_at: string }[] };
    expect(tokens).toEqual([expect.objectContaining({ name: 'ci', last_used_at: expect.any(String) })]);
    expect(listed.stdout).not.toContain(token.slice(12));
    const table = await runCli(['tokens', 'list'], env);
    expect(table.stdout.split('\n')[0]).toBe('id\tname\tprefix\tcreated\texpires\tlast used');
    expect(table.stdout).toContain(`\tci\t${token.slice(0, 12)}\t`);

    const id = tokens[0]?.id ?? '';
    const revoked = await runCli(['tokens', 'revoke', id], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`Revoked the personal access token ${id}.\n`);

    const refused = await runCli(['whoami'], ci);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(
      /^not_logged_in: the token in TOLLGATE_TOKEN was refused: this personal access token was revoked\nhint: /,
    );
    expect((await runCli(['tokens', 'revoke', id], env)).stderr).toMatch(/^not_found: no such personal access token/);
  });

  it('cannot create more tokens with a token: session_required, exit 1', async () => {
    const created = await runCli(['tokens', 'create', '--name', 'deploy', '--expires-in', 'never', '--json'], env);
    expect(created.code).toBe(0);
    const body = JSON.parse(created.stdout) as { token: string; expires_at: string | null; name: string };
    expect(body).toMatchObject({ name: 'deploy', expires_at: null, token: expect.stringMatching(/^tgpat_/) });

    const ci = await ciEnv(body.token);
    const refused = await runCli(['tokens', 'create', '--name', 'more'], ci);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(
      'session_required: creating personal access tokens needs a session, not a personal access token\n' +
        'hint: log in with `tollgate login` and run it without TOLLGATE_TOKEN\n',
    );
    const list = JSON.parse((await runCli(['tokens', 'list', '--json'], ci)).stdout) as { tokens: unknown[] };
    expect(list.tokens).toHaveLength(1);
  });

  it('takes --expires-in as 1d to 365d or never, and refuses anything else as a usage error', async () => {
    const month = await runCli(['tokens', 'create', '--name', 'month', '--expires-in', '30d', '--json'], env);
    const expiresAt = new Date((JSON.parse(month.stdout) as { expires_at: string }).expires_at).getTime();
    expect(Math.round((expiresAt - Date.now()) / 86_400_000)).toBe(30);
    for (const value of ['0d', '366d', '30', 'soon']) {
      const refused = await runCli(['tokens', 'create', '--name', 'bad', '--expires-in', value], env);
      expect(refused.code, value).toBe(2);
      expect(refused.stderr).toMatch(/^usage_error: --expires-in must be a number of days from 1d to 365d, or never/);
    }
    const missing = await runCli(['tokens', 'create'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'usage_error: a token needs a name, to recognise it later\nhint: pass --name <what it is for>, e.g. --name ci\n',
    );
  });
});
