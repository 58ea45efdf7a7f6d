import { execFile, execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectedDatabaseDriver } from '@tollgate/services/testing';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, type CliResult, cliEnv, runCli } from './support/run-cli.js';
import { type RunningApi, startApi } from './support/start-api.js';

const grace = {
  email: 'grace@example.com',
  newEmail: 'hopper@example.net',
  password: 'a compiler is a fine thing 1952',
  newPassword: 'nanoseconds are eleven inches long',
};
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let dir: string;
let mailDir: string;
/** The first operator (admin@localhost), signed in by the first `tollgate start`. */
let admin: NodeJS.ProcessEnv;
/** Grace, who signs up with the CLI; a config dir of her own. */
let graceEnv: NodeJS.ProcessEnv;
let api: RunningApi;
let apiUrl = '';
let graceId = '';
let adminId = '';

beforeAll(async () => {
  api = await startApi('account', { TOLLGATE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') });
  ({ dir, apiUrl } = api);
  mailDir = join(dir, 'mail');
  admin = cliEnv({ TOLLGATE_CONFIG_DIR: join(dir, 'config'), TOLLGATE_API_URL: apiUrl });
  graceEnv = cliEnv({ TOLLGATE_CONFIG_DIR: join(dir, 'grace'), TOLLGATE_API_URL: apiUrl });
});

afterAll(() => api?.dispose());

interface Mail {
  to: string;
  purpose: string;
  text: string;
}

/** Every mail the API wrote to the mail folder, oldest first (the file names start with the time). */
async function mails(): Promise<Mail[]> {
  const files = (await readdir(mailDir).catch(() => [] as string[])).filter((file) => file.endsWith('.eml')).sort();
  return Promise.all(
    files.map(async (file) => {
      const parsed = await simpleParser(await readFile(join(mailDir, file)));
      return {
        to: parsed.to && !Array.isArray(parsed.to) ? parsed.to.text : '',
        purpose: String(parsed.headers.get('x-tollgate-purpose') ?? ''),
        text: parsed.text ?? '',
      };
    }),
  );
}

async function mailsTo(to: string, purpose: string): Promise<Mail[]> {
  return (await mails()).filter((mail) => mail.to === to && mail.purpose === purpose);
}

/** The one token with `prefix` in a mail's text. */
function tokenIn(mail: Mail | undefined, prefix: string): string {
  const tokens = [...new Set(mail?.text.match(new RegExp(`${prefix}[A-Za-z0-9_-]{43}`, 'g')) ?? [])];
  expect(tokens).toHaveLength(1);
  return tokens[0] ?? '';
}

/** A token of the right shape that was never issued. */
const unknownToken = (prefix: string) => `${prefix}${'A'.repeat(43)}`;

const json = (result: CliResult) => JSON.parse(result.stdout) as Record<string, unknown>;

const scriptAvailable = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`), typing `input`: the way to see what a
 * person at a terminal sees. stdout and stderr arrive mixed, as on a screen.
 */
function runOnTerminal(args: string[], env: NodeJS.ProcessEnv, input: string): Promise<CliResult> {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, bin, ...args].map(quote).join(' ');
  return new Promise((resolve) => {
    const child = execFile('script', ['-qec', command, '/dev/null'], { env, timeout: 20_000 }, (error, stdout) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr: '' });
    });
    child.stdin?.end(input);
  });
}

describe(`tollgate account (${expectedDatabaseDriver})`, () => {
  it('account show prints the whole account, as fields or as one JSON document', async () => {
    const signup = await runCli(
      ['signup', '--email', grace.email, '--name', 'Grace', '--password-stdin'],
      graceEnv,
      20_000,
      grace.password,
    );
    expect(signup.code).toBe(0);
    const login = await runCli(['login', '--email', grace.email, '--password-stdin'], graceEnv, 20_000, grace.password);
    expect(login.code).toBe(0);

    const shown = await runCli(['account', 'show'], graceEnv);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^id\t[0-9a-f-]{36}$/m);
    expect(shown.stdout).toMatch(/^email\tgrace@example\.com$/m);
    expect(shown.stdout).toMatch(/^name\tGrace$/m);
    expect(shown.stdout).toMatch(/^verified\tno \(see tollgate account verify --resend\)$/m);
    expect(shown.stdout).toMatch(/^2fa\toff$/m);
    expect(shown.stdout).toMatch(/^role\tmember$/m);
    expect(shown.stdout).toMatch(/^created\t\d{4}-\d\d-\d\dT/m);

    const asJson = await runCli(['account', 'show', '--json'], graceEnv);
    expect(asJson.code).toBe(0);
    const account = json(asJson);
    expect(account).toEqual({
      id: expect.stringMatching(uuid),
      email: grace.email,
      name: 'Grace',
      installation_role: 'member',
      email_verified: false,
      created_at: expect.any(String),
      // As GET /v1/me/2fa answers it; new second factors may add fields.
      two_factor: expect.objectContaining({ totp: 'off', email_codes: false, methods: [] }),
    });
    graceId = String(account.id);

    const signedOut = await runCli(['account', 'show'], cliEnv({ TOLLGATE_CONFIG_DIR: join(dir, 'nobody') }));
    expect(signedOut.code).toBe(4);
    expect(signedOut.stderr).toMatch(/^not_logged_in: /);
  });

  it('account update sets or clears the name, and refuses to do nothing', async () => {
    const nothing = await runCli(['account', 'update'], graceEnv);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/^usage_error: nothing to change\nhint: pass --name "<your name>" or --clear-name/);
    const both = await runCli(['account', 'update', '--name', 'G', '--clear-name'], graceEnv);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^usage_error: /);

    const named = await runCli(['account', 'update', '--name', 'Grace Hopper', '--json'], graceEnv);
    expect(named.code).toBe(0);
    expect(json(named)).toMatchObject({ id: graceId, email: grace.email, name: 'Grace Hopper' });
    expect((await runCli(['account', 'show'], graceEnv)).stdout).toMatch(/^name\tGrace Hopper$/m);

    const cleared = await runCli(['account', 'update', '--clear-name'], graceEnv);
    expect(cleared.code).toBe(0);
    expect(cleared.stdout).toBe('Removed the name of grace@example.com.\n');
    expect(json(await runCli(['account', 'show', '--json'], graceEnv)).name).toBeNull();

    const tooLong = await runCli(['account', 'update', '--name', 'x'.repeat(201)], graceEnv);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/^validation_failed: name/);
  });

  it('account verify --resend mails a new token that replaces the first; a verified address is refused', async () => {
    const none = await runCli(['account', 'verify'], graceEnv);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(
      /^usage_error: no token given\nhint: pass the token from the verification email, or --resend/,
    );
    const both = await runCli(['account', 'verify', unknownToken('tgv_'), '--resend'], graceEnv);
    expect(both.code).toBe(2);

    const [fromSignup] = await mailsTo(grace.email, 'verify_email');
    const firstToken = tokenIn(fromSignup, 'tgv_');
    const resent = await runCli(['account', 'verify', '--resend', '--json'], graceEnv);
    expect(resent.code).toBe(0);
    expect(json(resent)).toEqual({ status: 'verification_sent', email: grace.email });
    const sent = await mailsTo(grace.email, 'verify_email');
    expect(sent).toHaveLength(2);
    const secondToken = tokenIn(sent[1], 'tgv_');
    expect(secondToken).not.toBe(firstToken);

    const stale = await runCli(['account', 'verify', firstToken], graceEnv);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^token_invalid: this token is invalid, expired or already used/);
    const verified = await runCli(['account', 'verify', secondToken], graceEnv);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toBe('Verified grace@example.com.\n');
    expect(json(await runCli(['account', 'show', '--json'], graceEnv)).email_verified).toBe(true);

    const again = await runCli(['account', 'verify', '--resend'], graceEnv);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^email_already_verified: grace@example\.com is already verified/);
    expect(await mailsTo(grace.email, 'verify_email')).toHaveLength(2);
  });

  it('account email asks for the change with the password, then switches with the mailed token', async () => {
    const neither = await runCli(['account', 'email'], graceEnv);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/^usage_error: give the new email address, or --token/);
    const both = await runCli(['account', 'email', grace.newEmail, '--token', unknownToken('tge_')], graceEnv);
    expect(both.code).toBe(2);
    const noPassword = await runCli(['account', 'email', grace.newEmail], graceEnv);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(
      /^usage_error: no terminal to ask for your current password\nhint: pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD/,
    );

    const wrong = await runCli(
      ['account', 'email', grace.newEmail, '--password-stdin'],
      graceEnv,
      20_000,
      'not the password at all',
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^reauthentication_failed: the password is wrong/);
    expect(await mailsTo(grace.newEmail, 'change_email')).toHaveLength(0);

    const asked = await runCli(
      ['account', 'email', grace.newEmail, '--password-stdin', '--json'],
      graceEnv,
      20_000,
      grace.password,
    );
    expect(asked.code).toBe(0);
    expect(json(asked)).toEqual({ status: 'confirmation_sent', email: grace.newEmail });
    const [confirmation] = await mailsTo(grace.newEmail, 'change_email');
    const token = tokenIn(confirmation, 'tge_');
    expect(confirmation?.text).toContain(`tollgate account email --token ${token}`);

    const bogus = await runCli(['account', 'email', '--token', unknownToken('tge_')], graceEnv);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toMatch(/^token_invalid: /);
    expect((await runCli(['whoami'], graceEnv)).stdout).toBe(`${grace.email}\n`);

    const switched = await runCli(['account', 'email', '--token', token, '--json'], graceEnv);
    expect(switched.code).toBe(0);
    expect(json(switched)).toMatchObject({ id: graceId, email: grace.newEmail, email_verified: true });
    expect((await runCli(['whoami'], graceEnv)).stdout).toBe(`${grace.newEmail}\n`);
    // The stored session names the account by its new address too.
    expect((await runCli(['auth', 'status'], graceEnv)).stdout).toContain(`as ${grace.newEmail}`);
    expect(await mailsTo(grace.email, 'email_changed')).toHaveLength(1);
  });

  it('account reset-password mails a token and sets the password from stdin; a wrong token changes nothing', async () => {
    const requested = await runCli(['account', 'reset-password', '--email', grace.newEmail, '--json'], graceEnv);
    expect(requested.code).toBe(0);
    expect(json(requested)).toEqual({ status: 'reset_requested', email: grace.newEmail, api_url: apiUrl });
    const [reset] = await mailsTo(grace.newEmail, 'reset_password');
    const token = tokenIn(reset, 'tgp_');
    expect(reset?.text).toContain(`tollgate account password --token ${token}`);

    const wrong = await runCli(
      ['account', 'reset-password', '--token', unknownToken('tgp_'), '--password-stdin'],
      graceEnv,
      20_000,
      grace.newPassword,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^token_invalid: this token is invalid, expired or already used/);
    const wrongJson = await runCli(
      ['account', 'reset-password', '--token', unknownToken('tgp_'), '--password-stdin', '--json'],
      graceEnv,
      20_000,
      grace.newPassword,
    );
    expect(wrongJson.code).toBe(1);
    expect(json(wrongJson)).toEqual({ error: { code: 'token_invalid', message: expect.any(String) } });
    // Nothing happened: the session still works.
    expect((await runCli(['whoami'], graceEnv)).code).toBe(0);

    const noPassword = await runCli(['account', 'reset-password', '--token', token], graceEnv);
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toMatch(
      /^usage_error: no terminal to ask for the new password\nhint: pass --password-stdin/,
    );

    const done = await runCli(
      ['account', 'reset-password', '--token', token, '--password-stdin', '--json'],
      graceEnv,
      20_000,
      `${grace.newPassword}\n`,
    );
    expect(done.code).toBe(0);
    const answer = json(done);
    expect(answer).toEqual({ status: 'password_reset', sessions_revoked: expect.any(Number) });
    expect(answer.sessions_revoked).toBeGreaterThanOrEqual(1);
    expect((await runCli(['whoami'], graceEnv)).code).toBe(4);
    const reused = await runCli(['account', 'password', '--token', token, '--password-stdin'], graceEnv, 20_000, 'x');
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/^token_invalid: /);

    const old = await runCli(
      ['login', '--email', grace.newEmail, '--password-stdin'],
      graceEnv,
      20_000,
      grace.password,
    );
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/^invalid_credentials: /);
    const fresh = await runCli(
      ['login', '--email', grace.newEmail, '--password-stdin'],
      graceEnv,
      20_000,
      grace.newPassword,
    );
    expect(fresh.code).toBe(0);
  });
});

describe(`tollgate teams show, transfer and leave (${expectedDatabaseDriver})`, () => {
  const ownerOf = async () =>
    json(await runCli(['teams', 'show', '--team', 'acme-corp', '--json'], admin)).owner_user_id;

  it('teams show prints the team and its owner; --json is the team document', async () => {
    adminId = String(json(await runCli(['whoami', '--json'], admin)).id);
    expect((await runCli(['teams', 'create', 'Acme Corp'], admin)).code).toBe(0);
    expect((await runCli(['teams', 'invite', grace.newEmail, '--role', 'developer'], admin)).code).toBe(0);
    const invitation = (await mails())
      .filter((mail) => mail.to === grace.newEmail && mail.text.includes('tgi_'))
      .at(-1);
    const accepted = await runCli(['teams', 'accept', tokenIn(invitation, 'tgi_')], graceEnv);
    expect(accepted.code).toBe(0);

    const shown = await runCli(['teams', 'show'], admin);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^name\tAcme Corp$/m);
    expect(shown.stdout).toMatch(/^slug\tacme-corp$/m);
    expect(shown.stdout).toMatch(/^id\t[0-9a-f-]{36}$/m);
    expect(shown.stdout).toContain(`\nowner\tadmin@localhost (${adminId})\n`);
    expect(shown.stdout).toMatch(/^2fa\tnot required$/m);

    const asJson = await runCli(['teams', 'show', '--team', 'acme-corp', '--json'], graceEnv);
    expect(asJson.code).toBe(0);
    expect(json(asJson)).toEqual({
      id: expect.stringMatching(uuid),
      name: 'Acme Corp',
      slug: 'acme-corp',
      owner_user_id: adminId,
      require_two_factor: false,
      created_at: expect.any(String),
    });

    const noTeam = await runCli(['teams', 'show'], graceEnv);
    expect(noTeam.code).toBe(2);
    expect(noTeam.stderr).toMatch(/^no_team: no team chosen/);
    const unknown = await runCli(['teams', 'show', '--team', 'no-such-team'], graceEnv);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^not_found: no such team/);
  });

  it('teams transfer without a terminal and without --yes exits 2 naming --yes, and changes nothing', async () => {
    const refused = await runCli(['teams', 'transfer', grace.newEmail], admin);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^usage_error: no terminal to confirm the transfer\nhint: pass --yes to go ahead without being asked/,
    );
    const refusedJson = await runCli(['teams', 'transfer', grace.newEmail, '--json'], admin);
    expect(refusedJson.code).toBe(2);
    expect(json(refusedJson)).toEqual({
      error: {
        code: 'usage_error',
        message: 'no terminal to confirm the transfer',
        hint: 'pass --yes to go ahead without being asked',
      },
    });
    expect(await ownerOf()).toBe(adminId);
  });

  it.skipIf(!scriptAvailable)(
    'teams transfer on a terminal asks first, and anything but yes changes nothing',
    async () => {
      const declined = await runOnTerminal(['teams', 'transfer', grace.newEmail], admin, 'n\n');
      expect(declined.stdout).toContain(
        `Make ${grace.newEmail} the owner of acme-corp? Only they can transfer it again. [y/N]`,
      );
      expect(declined.stdout).toContain('cancelled: not confirmed; nothing was changed');
      expect(declined.code).toBe(1);
      expect(await ownerOf()).toBe(adminId);
    },
  );

  it('teams transfer --yes makes another member the owner; only a member can be named, only the owner can do it', async () => {
    const stranger = await runCli(['teams', 'transfer', 'nobody@example.com', '--yes'], admin);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/^not_found: nobody@example\.com is not a member of acme-corp/);
    const notOwner = await runCli(['teams', 'transfer', 'admin@localhost', '--team', 'acme-corp', '--yes'], graceEnv);
    expect(notOwner.code).toBe(1);
    expect(notOwner.stderr).toMatch(/^forbidden: .*\nhint: only the owner can transfer the team/);
    expect(await ownerOf()).toBe(adminId);

    const transferred = await runCli(['teams', 'transfer', grace.newEmail, '--yes', '--json'], admin);
    expect(transferred.code).toBe(0);
    expect(json(transferred)).toEqual({ team: 'acme-corp', owner: { id: graceId, email: grace.newEmail } });
    expect(await ownerOf()).toBe(graceId);
    const { members } = json(await runCli(['teams', 'members', '--json'], admin)) as {
      members: { email: string; role: string; owner: boolean }[];
    };
    expect(members).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ email: grace.newEmail, role: 'admin', owner: true }),
        expect.objectContaining({ email: 'admin@localhost', role: 'admin', owner: false }),
      ]),
    );
  });

  it('teams leave: --yes without a terminal, never the owner; it forgets the current team it left', async () => {
    const refused = await runCli(['teams', 'leave'], admin);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^usage_error: no terminal to confirm leaving the team\nhint: pass --yes/);

    const owner = await runCli(['teams', 'leave', '--team', 'acme-corp', '--yes'], graceEnv);
    expect(owner.code).toBe(1);
    expect(owner.stderr).toMatch(
      /^owner_cannot_leave: the owner cannot leave or be removed\nhint: make another member the owner first: tollgate teams transfer <member>/,
    );
    const memberEmails = async () =>
      (
        json(await runCli(['teams', 'members', '--team', 'acme-corp', '--json'], graceEnv)) as {
          members: { email: string }[];
        }
      ).members
        .map((member) => member.email)
        .sort();
    expect(await memberEmails()).toEqual(['admin@localhost', grace.newEmail]);

    const left = await runCli(['teams', 'leave', '--yes', '--json'], admin);
    expect(left.code).toBe(0);
    expect(json(left)).toEqual({
      left: expect.objectContaining({ slug: 'acme-corp', name: 'Acme Corp' }),
      current_team_cleared: true,
    });
    expect(await memberEmails()).toEqual([grace.newEmail]);
    const config = JSON.parse(await readFile(join(dir, 'config', 'config.json'), 'utf8'));
    expect(config.profiles.default.team).toBeUndefined();
    const members = await runCli(['teams', 'members'], admin);
    expect(members.code).toBe(2);
    expect(members.stderr).toMatch(/^no_team: /);
  });
});
