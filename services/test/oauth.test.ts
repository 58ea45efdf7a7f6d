import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTeamSso, identityTokensContext } from '../src/identity/oauth/oauth-store.js';
import { appleClientSecret } from '../src/identity/oauth/providers.js';
import { setEmailCodes } from '../src/identity/two-factor-store.js';
import { createUserWithPassword } from '../src/identity/users.js';
import { createKeyring, keyIdOf } from '../src/secrets/master-keyring.js';
import { reencryptSecrets } from '../src/secrets/rotate-secrets.js';
import { callApi } from './support/accounts.js';
import { startTestApi, type TestApi } from './support/api.js';
import { expectedDatabaseDriver } from './support/backends.js';
import { browse } from './support/browser.js';
import { startGitHubServer, type TestGitHub, type TestGitHubUser } from './support/github.js';
import { startOidcProvider, type TestAccount, type TestOidcProvider } from './support/oidc-provider.js';

const password = 'oauth test passphrase long 1';
const loopback = 'http://127.0.0.1:53682/callback';
let testApi: TestApi;
let op: TestOidcProvider;
let github: TestGitHub;

const unique = () => randomBytes(4).toString('hex');
const masterKey = randomBytes(32);

beforeAll(async () => {
  op = await startOidcProvider();
  github = await startGitHubServer();
  testApi = await startTestApi({
    keyring: createKeyring({ current: masterKey }),
    // The test's OpenID provider listens on 127.0.0.1.
    ssoPrivateIssuers: true,
    loginProviders: {
      github: { clientId: github.clientId, clientSecret: github.clientSecret, url: github.url, apiUrl: github.apiUrl },
      google: { clientId: 'google-client', clientSecret: 'google-secret-value-0123456789', issuer: op.issuer },
      apple: { clientId: 'apple-client', clientSecret: 'apple-secret-value-0123456789', issuer: op.issuer },
    },
  });
  const redirect = `${testApi.server.url}/v1/auth/oauth/callback`;
  op.configure([
    { client_id: 'google-client', client_secret: 'google-secret-value-0123456789', redirect_uris: [redirect] },
    {
      client_id: 'apple-client',
      client_secret: 'apple-secret-value-0123456789',
      redirect_uris: [redirect],
      token_endpoint_auth_method: 'client_secret_post',
    },
    { client_id: 'sso-client', client_secret: 'sso-secret-value-0123456789', redirect_uris: [redirect] },
  ]);
});
afterAll(async () => {
  await testApi?.dispose();
  await op?.close();
  await github?.close();
});

const call = (method: string, path: string, body?: unknown, token?: string) =>
  callApi(testApi, token, method, path, body);

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

interface Returned {
  /** Where the provider's answer sent the browser back to (the client's loopback). */
  url: URL;
  verifier: string;
  /** The requests the browser made on the way. */
  visited: string[];
}

/** Starts a login, lets the browser go through the provider, and returns where it came back. */
async function viaBrowser(start: Record<string, unknown>, token?: string): Promise<Returned> {
  const { verifier, challenge } = pkce();
  const state = unique();
  const started = await call(
    'POST',
    '/v1/auth/oauth/start',
    { redirect_uri: loopback, state, code_challenge: challenge, ...start },
    token,
  );
  expect(started.status, JSON.stringify(started.body)).toBe(201);
  const result = await browse(started.body.authorization_url, { stopAt: (url) => url.href.startsWith(loopback) });
  expect(result.url.href.startsWith(loopback), `stopped at ${result.url.href}: ${result.body}`).toBe(true);
  expect(result.url.searchParams.get('state')).toBe(state);
  return { url: result.url, verifier, visited: result.visited };
}

async function exchange(returned: Returned) {
  const code = returned.url.searchParams.get('code');
  expect(code, returned.url.searchParams.get('error_description') ?? '').toBeTruthy();
  return call('POST', '/v1/auth/oauth/token', { code, code_verifier: returned.verifier });
}

async function signIn(start: Record<string, unknown>, seen?: (visited: string[]) => void) {
  const returned = await viaBrowser(start);
  seen?.(returned.visited);
  const exchanged = await exchange(returned);
  expect(exchanged.status, JSON.stringify(exchanged.body)).toBe(200);
  return exchanged.body as { access_token: string; user: { id: string; email: string; email_verified: boolean } };
}

function githubUser(overrides: Partial<TestGitHubUser> = {}): TestGitHubUser {
  const id = 1000 + Math.floor(Math.random() * 1_000_000);
  return {
    id,
    login: `octo-${id}`,
    name: 'Octo Cat',
    emails: [{ email: `octo.${unique()}@example.com`, primary: true, verified: true }],
    ...overrides,
  };
}

const person = (overrides: Partial<TestAccount> = {}): TestAccount => ({
  sub: `sub-${unique()}`,
  email: `person.${unique()}@example.com`,
  email_verified: true,
  name: 'Pat Person',
  ...overrides,
});

async function passwordAccount(email: string, verified: boolean) {
  const user = await testApi.database.transaction((tx) => createUserWithPassword(tx, { email, password }));
  if (verified) await testApi.database.query('UPDATE users SET email_verified_at = now() WHERE id = $1', [user.id]);
  const login = await call('POST', '/v1/auth/login', { email, password });
  return { id: user.id, token: login.body.access_token as string };
}

describe(`login with GitHub, Google, Apple and team SSO (${expectedDatabaseDriver})`, () => {
  it('lists the configured providers', async () => {
    const listed = await call('GET', '/v1/auth/providers');
    expect(listed.body.providers.map((p: { id: string }) => p.id)).toEqual(['github', 'google', 'apple', 'sso']);
  });

  it('GitHub: a new person gets an account with the verified primary email; the next login finds it', async () => {
    const who = githubUser({
      emails: [
        { email: `unverified.${unique()}@example.com`, primary: false, verified: false },
        { email: `primary.${unique()}@example.com`, primary: true, verified: true },
      ],
    });
    github.nextLogin(who);
    const first = await signIn({ provider: 'github' });
    expect(first.user.email).toBe(who.emails[1]?.email);
    expect(first.user.email_verified).toBe(true);
    const me = await call('GET', '/v1/me', undefined, first.access_token);
    expect(me.body.id).toBe(first.user.id);

    github.nextLogin(who);
    const second = await signIn({ provider: 'github' });
    expect(second.user.id).toBe(first.user.id);
    const identities = await call('GET', '/v1/me/identities', undefined, second.access_token);
    expect(identities.body.has_password).toBe(false);
    expect(identities.body.identities).toHaveLength(1);
    expect(identities.body.identities[0].provider).toBe('github');
    // The export names the linked identity, never the provider's tokens.
    const exported = await call('GET', '/v1/me/export', undefined, second.access_token);
    expect(exported.body.linked_identities).toEqual([
      expect.objectContaining({ provider: 'github', subject: String(who.id), email: who.emails[1]?.email }),
    ]);
    for (const token of github.issuedTokens) expect(JSON.stringify(exported.body)).not.toContain(token);
    // The only way in cannot be unlinked.
    const unlink = await call(
      'DELETE',
      `/v1/me/identities/${identities.body.identities[0].id}`,
      undefined,
      second.access_token,
    );
    expect(unlink.status).toBe(409);
    expect(unlink.body.error.code).toBe('last_login_method');
  });

  it('GitHub: an account without a verified email is refused, and the person cancelling is reported back', async () => {
    github.nextLogin(githubUser({ emails: [{ email: `x.${unique()}@example.com`, primary: true, verified: false }] }));
    const unverified = await viaBrowser({ provider: 'github' });
    expect(unverified.url.searchParams.get('error')).toBe('oauth_email_unverified');
    expect(unverified.url.searchParams.get('code')).toBeNull();

    github.nextLogin('deny');
    const denied = await viaBrowser({ provider: 'github' });
    expect(denied.url.searchParams.get('error')).toBe('oauth_denied');
    expect(denied.url.searchParams.get('error_description')).toMatch(/access_denied/);
  });

  it('Google (OpenID Connect): links to an existing verified account with the same email', async () => {
    const email = `linked.${unique()}@example.com`;
    const existing = await passwordAccount(email, true);
    op.nextLogin(person({ email }));
    let visited: string[] = [];
    const session = await signIn({ provider: 'google' }, (seen) => {
      visited = seen;
    });
    expect(session.user.id).toBe(existing.id);
    expect(visited.filter((request) => request.includes('/v1/auth/oauth/callback'))).toEqual([
      expect.stringMatching(/^GET /),
    ]);
    const audit = await testApi.database.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE actor_user_id = $1 AND action = 'user.identity_linked'`,
      [existing.id],
    );
    expect(audit.rowCount).toBe(1);
  });

  it('Google: an unverified account with the same email is not taken over', async () => {
    const email = `squatted.${unique()}@example.com`;
    await passwordAccount(email, false);
    op.nextLogin(person({ email }));
    const returned = await viaBrowser({ provider: 'google' });
    expect(returned.url.searchParams.get('error')).toBe('oauth_account_conflict');
    op.nextLogin(person({ email: `nope.${unique()}@example.com`, email_verified: false }));
    expect((await viaBrowser({ provider: 'google' })).url.searchParams.get('error')).toBe('oauth_email_unverified');
  });

  it('Apple: the answer comes back as a form POST and signs the person in', async () => {
    const who = person({ email_verified: 'true' });
    op.nextLogin(who);
    let visited: string[] = [];
    const session = await signIn({ provider: 'apple' }, (seen) => {
      visited = seen;
    });
    expect(session.user.email).toBe(who.email);
    expect(visited.filter((request) => request.includes('/v1/auth/oauth/callback'))).toEqual([
      expect.stringMatching(/^POST /),
    ]);
  });

  it('an account with two-factor authentication gets a challenge, not a session', async () => {
    const who = person();
    op.nextLogin(who);
    const first = await signIn({ provider: 'google' });
    await testApi.database.transaction((tx) => setEmailCodes(tx, first.user.id, true));
    op.nextLogin(who);
    const second = await exchange(await viaBrowser({ provider: 'google' }));
    expect(second.status).toBe(200);
    expect(second.body.two_factor_required).toBe(true);
    expect(second.body.access_token).toBeUndefined();
    expect(second.body.methods).toContain('email');
  });

  it('the one-time code works once, only with the right PKCE verifier, and the provider answer only once', async () => {
    op.nextLogin(person());
    const returned = await viaBrowser({ provider: 'google' });
    const wrong = await call('POST', '/v1/auth/oauth/token', {
      code: returned.url.searchParams.get('code'),
      code_verifier: randomBytes(32).toString('base64url'),
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.code).toBe('invalid_login_code');
    // A wrong verifier burns the code: the right one no longer works.
    expect((await exchange(returned)).body.error.code).toBe('invalid_login_code');

    op.nextLogin(person());
    const again = await viaBrowser({ provider: 'google' });
    expect((await exchange(again)).status).toBe(200);
    expect((await exchange(again)).body.error.code).toBe('invalid_login_code');

    // Replaying the provider's answer to the callback finds nothing.
    const { challenge } = pkce();
    const started = await call('POST', '/v1/auth/oauth/start', {
      provider: 'github',
      redirect_uri: loopback,
      code_challenge: challenge,
    });
    github.nextLogin(githubUser());
    const callbackUrl = await browse(started.body.authorization_url, {
      stopAt: (url) => url.pathname === '/v1/auth/oauth/callback',
    });
    const firstUse = await fetch(callbackUrl.url, { redirect: 'manual' });
    expect(firstUse.status).toBe(302);
    const replay = await fetch(callbackUrl.url, { redirect: 'manual' });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toMatch(/expired/);
  });

  it('refuses to send codes anywhere but a loopback address or this server, and unknown providers', async () => {
    const { challenge } = pkce();
    for (const redirect of [
      'https://evil.example/cb',
      'http://127.0.0.1/no-port',
      'http://10.0.0.1:80/cb',
      'nonsense',
    ]) {
      const started = await call('POST', '/v1/auth/oauth/start', {
        provider: 'github',
        redirect_uri: redirect,
        code_challenge: challenge,
      });
      expect(started.status, redirect).toBe(400);
      expect(started.body.error.code).toBe('invalid_redirect_uri');
    }
    const own = await call('POST', '/v1/auth/oauth/start', {
      provider: 'github',
      redirect_uri: `${testApi.server.url}/console/callback`,
      code_challenge: challenge,
    });
    expect(own.status).toBe(201);
    const noTeam = await call('POST', '/v1/auth/oauth/start', {
      provider: 'sso',
      team: `no-such-team-${unique()}`,
      redirect_uri: loopback,
      code_challenge: challenge,
    });
    expect(noTeam.status).toBe(404);
    expect(noTeam.body.error.code).toBe('sso_not_configured');
    const badChallenge = await call('POST', '/v1/auth/oauth/start', {
      provider: 'github',
      redirect_uri: loopback,
      code_challenge: 'short',
    });
    expect(badChallenge.body.error.code).toBe('validation_failed');
  });

  describe('team SSO', () => {
    let admin: { id: string; token: string };
    let teamSlug: string;
    let teamId: string;

    beforeAll(async () => {
      admin = await passwordAccount(`sso-admin.${unique()}@example.com`, true);
      const team = await call('POST', '/v1/teams', { name: `SSO Corp ${unique()}` }, admin.token);
      expect(team.status).toBe(201);
      teamSlug = team.body.slug;
      teamId = team.body.id;
    });

    it('only an admin of the team configures it; the secret is never shown', async () => {
      const developer = await passwordAccount(`sso-dev.${unique()}@example.com`, true);
      await testApi.database.query(`INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, 'developer')`, [
        teamId,
        developer.id,
      ]);
      const settings = {
        issuer: op.issuer,
        client_id: 'sso-client',
        client_secret: 'sso-secret-value-0123456789',
        email_domains: ['corp.example'],
        default_role: 'developer',
      };
      const denied = await call('PUT', `/v1/teams/${teamSlug}/sso`, settings, developer.token);
      expect(denied.status).toBe(403);
      expect(denied.body.error.code).toBe('forbidden');
      const badIssuer = await call(
        'PUT',
        `/v1/teams/${teamSlug}/sso`,
        { ...settings, issuer: 'http://example.com' },
        admin.token,
      );
      expect(badIssuer.body.error.code).toBe('validation_failed');
      const unreachable = await call(
        'PUT',
        `/v1/teams/${teamSlug}/sso`,
        { ...settings, issuer: 'http://127.0.0.1:9/nothing' },
        admin.token,
      );
      expect(unreachable.status).toBe(502);
      expect(unreachable.body.error.code).toBe('provider_unavailable');
      const saved = await call('PUT', `/v1/teams/${teamSlug}/sso`, settings, admin.token);
      expect(saved.status, JSON.stringify(saved.body)).toBe(200);
      expect(saved.body.client_secret_set).toBe(true);
      expect(JSON.stringify(saved.body)).not.toContain('sso-secret');
      const shown = await call('GET', `/v1/teams/${teamSlug}/sso`, undefined, developer.token);
      expect(shown.body.issuer).toBe(op.issuer);
      expect(JSON.stringify(shown.body)).not.toContain('sso-secret');
    });

    it('signs people of the team domain in and makes them members with the default role', async () => {
      const who = person({ email: `alice.${unique()}@corp.example` });
      op.nextLogin(who);
      const session = await signIn({ provider: 'sso', team: teamSlug });
      expect(session.user.email).toBe(who.email);
      const member = await testApi.database.query<{ role: string }>(
        'SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2',
        [teamId, session.user.id],
      );
      expect(member.rows[0]?.role).toBe('developer');
      // Found by email domain as well as by team.
      op.nextLogin(who);
      const byDomain = await signIn({ provider: 'sso', email: `someone@corp.example` });
      expect(byDomain.user.id).toBe(session.user.id);
    });

    it('refuses emails outside its domains, and never claims an account made elsewhere', async () => {
      op.nextLogin(person({ email: `mallory.${unique()}@elsewhere.example` }));
      expect((await viaBrowser({ provider: 'sso', team: teamSlug })).url.searchParams.get('error')).toBe(
        'sso_domain_not_allowed',
      );
      const email = `bob.${unique()}@corp.example`;
      const bob = await passwordAccount(email, true);
      const ssoBob = person({ email });
      op.nextLogin(ssoBob);
      expect((await viaBrowser({ provider: 'sso', team: teamSlug })).url.searchParams.get('error')).toBe(
        'oauth_account_conflict',
      );
      // Signed in, Bob links it himself; from then on SSO logs him in.
      op.nextLogin(ssoBob);
      const linked = await exchange(await viaBrowser({ provider: 'sso', team: teamSlug, link: true }, bob.token));
      expect(linked.status, JSON.stringify(linked.body)).toBe(200);
      expect(linked.body.linked.provider).toBe('sso');
      op.nextLogin(ssoBob);
      expect((await signIn({ provider: 'sso', team: teamSlug })).user.id).toBe(bob.id);
      // Another account cannot link the same SSO identity.
      const carol = await passwordAccount(`carol.${unique()}@corp.example`, true);
      op.nextLogin(ssoBob);
      const stolen = await viaBrowser({ provider: 'sso', team: teamSlug, link: true }, carol.token);
      expect(stolen.url.searchParams.get('error')).toBe('identity_linked_elsewhere');
    });

    it('keeps provider tokens and the SSO secret sealed: no plaintext in the database', async () => {
      github.nextLogin(githubUser());
      await signIn({ provider: 'github' });
      const dump = await testApi.database.query<{ row: string }>(
        `SELECT row_to_json(t)::text AS row FROM (
           SELECT tokens_sealed AS v FROM user_identities UNION ALL
           SELECT client_secret_sealed FROM team_sso UNION ALL
           SELECT provider_checks_sealed FROM oauth_logins UNION ALL
           SELECT details::text FROM audit_log) t`,
      );
      const text = dump.rows.map((row) => row.row).join('\n');
      expect(github.issuedTokens.length).toBeGreaterThan(0);
      for (const token of github.issuedTokens) expect(text).not.toContain(token);
      expect(text).not.toContain('sso-secret-value');
      expect(text).toContain('tgs1.');
    });

    it('re-encrypts provider tokens and the SSO secret when the master key rotates', async () => {
      const newKey = randomBytes(32);
      const report = await reencryptSecrets(testApi.database, {
        keyring: createKeyring({ current: newKey, previous: [masterKey] }),
        actorUserId: admin.id,
      });
      expect(report.reencrypted).toBeGreaterThanOrEqual(2);
      const onlyNew = createKeyring({ current: newKey });
      expect((await findTeamSso(testApi.database, onlyNew, teamId))?.clientSecret).toBe('sso-secret-value-0123456789');
      const identities = await testApi.database.query<{ id: string; tokens_sealed: string }>(
        'SELECT id, tokens_sealed FROM user_identities',
      );
      expect(identities.rowCount).toBeGreaterThan(0);
      for (const row of identities.rows) {
        expect(row.tokens_sealed.startsWith(`tgs1.${keyIdOf(newKey)}.`)).toBe(true);
        expect(JSON.parse(onlyNew.decryptText(row.tokens_sealed, identityTokensContext(row.id))).access_token).toEqual(
          expect.any(String),
        );
      }
    });
  });
});

describe('team SSO issuers on private addresses', () => {
  it('are refused unless the operator allows them, so a team admin cannot aim the server inside its network', async () => {
    const strict = await startTestApi();
    try {
      const email = `strict.${unique()}@example.com`;
      await strict.database.transaction((tx) => createUserWithPassword(tx, { email, password }));
      const login = await fetch(`${strict.server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      const token = ((await login.json()) as { access_token: string }).access_token;
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const team = (await (
        await fetch(`${strict.server.url}/v1/teams`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ name: `Strict ${unique()}` }),
        })
      ).json()) as { slug: string };
      for (const issuer of [
        op.issuer,
        'http://localhost:8080',
        'https://10.1.2.3',
        'https://[::1]:8443',
        'https://169.254.169.254',
      ]) {
        const answer = await fetch(`${strict.server.url}/v1/teams/${team.slug}/sso`, {
          method: 'PUT',
          headers,
          body: JSON.stringify({ issuer, client_id: 'c', client_secret: 's' }),
        });
        const body = (await answer.json()) as { error: { code: string; message: string } };
        expect(answer.status, issuer).toBe(400);
        expect(body.error.code).toBe('validation_failed');
        expect(body.error.message).toMatch(/private or loopback/);
      }
      const stored = await strict.database.query('SELECT 1 FROM team_sso');
      expect(stored.rowCount).toBe(0);
    } finally {
      await strict.dispose();
    }
  });
});

describe('Sign in with Apple client secret', () => {
  it('is an ES256 JWT from the team to Apple about the Services ID, valid 5 minutes', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const now = new Date('2026-11-24T12:00:00Z');
    const secret = appleClientSecret(
      {
        teamId: 'TEAM123456',
        keyId: 'KEY1234567',
        privateKey: pem,
        clientId: 'com.example.web',
        audience: 'https://appleid.apple.com',
      },
      now,
    );
    const decoded = jwt.verify(secret, publicKey, {
      algorithms: ['ES256'],
      clockTimestamp: now.getTime() / 1000,
    }) as jwt.JwtPayload;
    expect(decoded).toMatchObject({ iss: 'TEAM123456', sub: 'com.example.web', aud: 'https://appleid.apple.com' });
    expect((decoded.exp ?? 0) - (decoded.iat ?? 0)).toBe(300);
    expect(jwt.decode(secret, { complete: true })?.header.kid).toBe('KEY1234567');
  });
});
