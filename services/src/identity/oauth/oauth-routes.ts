import type { Context } from 'koa';
import * as oidc from 'openid-client';
import { z } from 'zod';
import { type AuditEntryInput, appendAuditEntry, recordAudit, userLabel } from '../../audit/index.js';
import type { CounterStore } from '../../counters/counter-store.js';
import { TollgateError } from '../../errors/tollgate-error.js';
import { linkBase } from '../../http/link-base.js';
import { defineRoute } from '../../http/route.js';
import type { MasterKeyring } from '../../secrets/master-keyring.js';
import type { Database, Queryable } from '../../storage/database.js';
import { findTeam } from '../../teams/teams.js';
import { guardLoginRate } from '../abuse-limits.js';
import { completeFirstFactor, tokensSchema, twoFactorRequiredSchema } from '../auth-routes.js';
import { authenticate, authenticateSession, clientOf, requestAudit } from '../authenticate.js';
import type { RefreshTokenStore } from '../refresh-token-store.js';
import { findLoginByEmail, findUserById, normalizeEmail, type User } from '../users.js';
import {
  claimOAuthLogin,
  completeOAuthLogin,
  consumeOAuthLogin,
  createOAuthLogin,
  findIdentity,
  findOAuthLoginByCode,
  findSsoTeamForEmail,
  findTeamSso,
  type Identity,
  listIdentities,
  newState,
  type OAuthLogin,
  pkceChallengeOf,
  saveIdentity,
  unlinkIdentity,
} from './oauth-store.js';
import {
  assertPublicIssuer,
  createLoginProviders,
  createSsoProvider,
  isLoopbackUrl,
  type LoginProvider,
  type LoginProvidersConfig,
  type ProviderId,
  type ProviderProfile,
  type ProviderTokens,
  providerIds,
  providerLabels,
} from './providers.js';

export interface OAuthRouteOptions {
  database: Database;
  keyring: MasterKeyring;
  signingKey: Buffer;
  counters?: CounterStore | undefined;
  refreshTokens: RefreshTokenStore;
  /** Base URL the provider sends the browser back to; the request's local address when unset. */
  publicUrl: string | undefined;
  providers: LoginProvidersConfig;
  /** Allow team SSO issuers on private and loopback addresses (TOLLGATE_SSO_PRIVATE_ISSUERS). */
  privateIssuers?: boolean | undefined;
}

export const callbackPath = '/v1/auth/oauth/callback';

const identitySchema = z.object({
  id: z.string(),
  provider: z.enum(providerIds),
  team_id: z.string().nullable(),
  email: z.string().nullable(),
  created_at: z.string(),
  last_login_at: z.string().nullable(),
});

const identityBody = (identity: Identity): z.infer<typeof identitySchema> => ({
  id: identity.id,
  provider: identity.provider,
  team_id: identity.teamId,
  email: identity.email,
  created_at: identity.createdAt.toISOString(),
  last_login_at: identity.lastLoginAt?.toISOString() ?? null,
});

/**
 * Where the browser may be sent back with a one-time login code: a loopback address with a port
 * (a native app such as the CLI, RFC 8252 section 7.3) or this installation's own origin (the
 * console). Anything else could hand the code to a stranger.
 */
function checkReturnTo(value: string, ownOrigin: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TollgateError('invalid_redirect_uri', 'redirect_uri is not a URL');
  }
  if (url.username || url.password || url.hash) {
    throw new TollgateError('invalid_redirect_uri', 'redirect_uri must not carry credentials or a fragment');
  }
  const loopback = url.protocol === 'http:' && isLoopbackUrl(url) && url.port !== '';
  if (!loopback && url.origin !== ownOrigin) {
    throw new TollgateError(
      'invalid_redirect_uri',
      'redirect_uri must be a loopback address with a port (http://127.0.0.1:<port>/...) or this server',
    );
  }
  return url;
}

function returnUrl(login: Pick<OAuthLogin, 'returnTo' | 'clientState'>, params: Record<string, string>): string {
  const url = new URL(login.returnTo);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  if (login.clientState) url.searchParams.set('state', login.clientState);
  return url.toString();
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** The callback is opened by a browser: a dead end gets a short page, not JSON. */
function page(ctx: Context, status: number, title: string, message: string): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
  ctx.body = `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem">
<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body>`;
}

/** Emails of a team's SSO must be in its domains, when it lists any. */
function emailDomainAllowed(email: string, domains: string[]): boolean {
  if (domains.length === 0) return true;
  const domain = email.split('@').pop()?.toLowerCase() ?? '';
  return domains.includes(domain);
}

interface Resolution {
  user: User;
  identity: Identity;
  created: boolean;
  linked: boolean;
  joinedTeam?: string;
}

/**
 * Finds or makes the account a provider's answer belongs to:
 * 1. an identity already linked (provider + subject) logs in its user;
 * 2. a signed-in user linking a provider gets it linked, unless another account has it;
 * 3. otherwise the provider must vouch for an email. An existing account with that email is linked
 *    only when both sides verified it and the provider is an installation-wide one (GitHub,
 *    Google, Apple): a team's SSO is configured by that team, so it may not claim accounts made
 *    elsewhere; people link it themselves while signed in;
 * 4. else a new account is made, its email already verified, with no password.
 */
async function resolveAccount(
  tx: Queryable,
  keyring: MasterKeyring,
  input: { login: OAuthLogin; profile: ProviderProfile; tokens: ProviderTokens; ssoDomains?: string[] },
): Promise<Resolution> {
  const { login, profile } = input;
  const key = { provider: login.provider, teamId: login.teamId, subject: profile.subject };
  const existing = await findIdentity(tx, key);
  const email = profile.emailVerified && profile.email ? normalizeEmail(profile.email) : undefined;
  const save = (userId: string, existingId?: string) =>
    saveIdentity(tx, keyring, { ...key, existingId, userId, email, tokens: input.tokens });

  if (login.linkUserId) {
    if (existing && existing.userId !== login.linkUserId) {
      throw new TollgateError(
        'identity_linked_elsewhere',
        `this ${providerLabels[login.provider]} account is linked to another Tollgate account`,
        { hint: 'log in with it and unlink it there first' },
      );
    }
    const user = await findUserById(tx, login.linkUserId);
    if (!user) throw new TollgateError('unauthorized', 'this account no longer exists');
    return { user, identity: await save(user.id, existing?.id), created: false, linked: true };
  }
  if (existing) {
    const user = await findUserById(tx, existing.userId);
    if (!user) throw new TollgateError('unauthorized', 'this account no longer exists');
    return { user, identity: await save(user.id, existing.id), created: false, linked: false };
  }
  if (!email) {
    throw new TollgateError(
      'oauth_email_unverified',
      `${providerLabels[login.provider]} did not vouch for an email address of this account`,
      { hint: 'verify an email address with the provider (and share it with Tollgate), then try again' },
    );
  }
  if (input.ssoDomains && !emailDomainAllowed(email, input.ssoDomains)) {
    throw new TollgateError('sso_domain_not_allowed', "this team's single sign-on does not cover that email's domain");
  }
  const found = await findLoginByEmail(tx, email);
  if (found) {
    if (login.provider !== 'sso' && found.user.emailVerifiedAt) {
      return { user: found.user, identity: await save(found.user.id), created: false, linked: true };
    }
    throw new TollgateError(
      'oauth_account_conflict',
      `an account with this email exists but is not linked to ${providerLabels[login.provider]}`,
      { hint: `log in to it another way, then run \`tollgate account link --provider ${login.provider}\`` },
    );
  }
  const inserted = await tx.query<{ id: string }>(
    `INSERT INTO users (email, name, password_hash, email_verified_at) VALUES ($1, $2, NULL, now()) RETURNING id`,
    [email, profile.name?.slice(0, 200) ?? null],
  );
  const user = await findUserById(tx, inserted.rows[0]?.id ?? '');
  if (!user) throw new Error('the new account vanished');
  return { user, identity: await save(user.id), created: true, linked: true };
}

export function oauthRoutes(options: OAuthRouteOptions) {
  const { database, keyring, signingKey } = options;
  const providers = createLoginProviders(options.providers);
  // A team's provider is rebuilt when its settings change (the key carries updated_at).
  const ssoProviders = new Map<string, LoginProvider>();

  async function providerFor(
    id: ProviderId,
    teamId: string | null,
  ): Promise<{
    provider: LoginProvider;
    ssoDomains?: string[];
    defaultRole?: string;
  }> {
    if (id !== 'sso') {
      const provider = providers[id];
      if (!provider) {
        throw new TollgateError('provider_not_configured', `logging in with ${providerLabels[id]} is not set up here`, {
          hint: 'an operator sets it up with the TOLLGATE_* variables in docs/configuration.md',
        });
      }
      return { provider };
    }
    const settings = teamId ? await findTeamSso(database, keyring, teamId) : undefined;
    if (!settings || !teamId) {
      throw new TollgateError('sso_not_configured', 'this team has no single sign-on', {
        hint: 'an admin of the team sets it up with `tollgate teams sso set`',
      });
    }
    // Checked at each login too: the issuer's name may have moved to another address since.
    if (!options.privateIssuers) await assertPublicIssuer(new URL(settings.issuer));
    const cacheKey = `${teamId}|${settings.updatedAt.toISOString()}`;
    let provider = ssoProviders.get(cacheKey);
    if (!provider) {
      for (const key of ssoProviders.keys()) if (key.startsWith(`${teamId}|`)) ssoProviders.delete(key);
      provider = createSsoProvider(settings);
      ssoProviders.set(cacheKey, provider);
    }
    return { provider, ssoDomains: settings.emailDomains, defaultRole: settings.defaultRole };
  }

  const auditEntry = (
    ctx: Context,
    entry: Omit<AuditEntryInput, 'ip' | 'userAgent' | 'requestId'>,
  ): AuditEntryInput => ({
    ...entry,
    ...requestAudit(ctx),
  });

  async function handleCallback(ctx: Context, response: URLSearchParams): Promise<void> {
    const state = response.get('state');
    const login = state ? await claimOAuthLogin(database, keyring, state) : undefined;
    if (!login) {
      page(
        ctx,
        400,
        'This login has expired',
        'This sign-in link was already used or is more than 10 minutes old. Start the login again.',
      );
      return;
    }
    const fail = async (error: TollgateError) => {
      await database.transaction(async (tx) => {
        await completeOAuthLogin(tx, { stateHash: login.stateHash });
        await appendAuditEntry(
          tx,
          auditEntry(ctx, {
            ...(login.linkUserId ? { actorUserId: login.linkUserId } : {}),
            actorLabel: login.linkUserId ? userLabel(login.linkUserId) : 'anonymous',
            action: 'auth.login_failed',
            outcome: 'failure',
            ...(login.teamId ? { teamId: login.teamId } : {}),
            details: { provider: login.provider, code: error.code },
          }),
        );
      });
      ctx.redirect(returnUrl(login, { error: error.code, error_description: error.message }));
    };
    try {
      const { provider, ssoDomains, defaultRole } = await providerFor(login.provider, login.teamId);
      const redirectUri = `${linkBase(ctx, options.publicUrl)}${callbackPath}`;
      const { profile, tokens } = await provider.complete({ redirectUri, response, checks: login.checks });
      const code = await database.transaction(async (tx) => {
        const resolved = await resolveAccount(tx, keyring, {
          login,
          profile,
          tokens,
          ...(ssoDomains ? { ssoDomains } : {}),
        });
        const actor = { actorUserId: resolved.user.id, actorLabel: userLabel(resolved.user.id) };
        if (resolved.created) {
          await appendAuditEntry(
            tx,
            auditEntry(ctx, {
              ...actor,
              action: 'user.signed_up',
              outcome: 'success',
              targetType: 'user',
              targetId: resolved.user.id,
              details: { provider: login.provider },
            }),
          );
        }
        if (resolved.linked) {
          await appendAuditEntry(
            tx,
            auditEntry(ctx, {
              ...actor,
              action: 'user.identity_linked',
              outcome: 'success',
              targetType: 'identity',
              targetId: resolved.identity.id,
              ...(login.teamId ? { teamId: login.teamId } : {}),
              details: { provider: login.provider },
            }),
          );
        }
        if (login.provider === 'sso' && login.teamId && !login.linkUserId) {
          // Signing in through a team's SSO makes you a member of that team.
          const joined = await tx.query(
            `INSERT INTO team_members (team_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
            [login.teamId, resolved.user.id, defaultRole ?? 'user'],
          );
          if (joined.rowCount > 0) {
            await appendAuditEntry(
              tx,
              auditEntry(ctx, {
                ...actor,
                action: 'team.member_joined',
                outcome: 'success',
                targetType: 'user',
                targetId: resolved.user.id,
                teamId: login.teamId,
                details: { via: 'sso', role: defaultRole ?? 'user' },
              }),
            );
          }
        }
        return completeOAuthLogin(tx, { stateHash: login.stateHash, userId: resolved.user.id });
      });
      ctx.redirect(returnUrl(login, { code: code ?? '' }));
    } catch (error) {
      if (error instanceof TollgateError && error.code !== 'internal_error') {
        await fail(error);
        return;
      }
      await fail(new TollgateError('provider_unavailable', 'the login could not be completed'));
      throw error;
    }
  }

  return [
    defineRoute({
      method: 'get',
      path: '/v1/auth/providers',
      operationId: 'listLoginProviders',
      summary: 'The login providers this installation offers',
      description: '`sso` is always listed: whether it works depends on the team (POST /v1/auth/oauth/start says).',
      tags: ['auth'],
      responses: {
        200: {
          description: 'Providers',
          schema: z.object({ providers: z.array(z.object({ id: z.enum(providerIds), name: z.string() })) }),
        },
      },
      handler: (ctx) => {
        const ids = providerIds.filter((id) => id === 'sso' || providers[id]);
        ctx.body = { providers: ids.map((id) => ({ id, name: providerLabels[id] })) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/oauth/start',
      operationId: 'startOAuthLogin',
      summary: 'Start logging in (or linking) through GitHub, Google, Apple or a team SSO',
      description:
        'Returns the provider URL to open in a browser. After the person signs in there, the browser comes ' +
        'back to `redirect_uri` with `code` (a one-time login code, 2 minutes) and your `state`, or with ' +
        '`error` and `error_description`. Exchange the code at POST /v1/auth/oauth/token with the PKCE ' +
        'verifier whose S256 `code_challenge` you sent here. With `link: true` (signed in), the provider ' +
        "account is linked to yours instead. For `sso`, name the team, or give an email whose domain a team's SSO covers.",
      tags: ['auth'],
      body: z.object({
        provider: z.enum(providerIds),
        team: z.string().min(1).max(100).optional(),
        email: z.string().min(3).max(320).optional(),
        redirect_uri: z.string().min(1).max(2000),
        state: z.string().min(1).max(500).optional(),
        code_challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be the base64url SHA-256 of the verifier'),
        code_challenge_method: z.literal('S256').default('S256'),
        link: z.boolean().default(false),
      }),
      responses: {
        201: {
          description: 'Open authorization_url in a browser',
          schema: z.object({ authorization_url: z.string(), expires_at: z.string() }),
        },
      },
      handler: async (ctx, { body }) => {
        const base = linkBase(ctx, options.publicUrl);
        const returnTo = checkReturnTo(body.redirect_uri, new URL(base).origin);
        // Linking adds a way to log in: a leaked personal access token must not add the thief's.
        const linkUser = body.link
          ? (await authenticateSession(ctx, { database, signingKey }, { action: 'linking a login provider' })).user
          : undefined;
        if (options.counters) await guardLoginRate(options.counters, { ip: clientOf(ctx).ip });
        let teamId: string | undefined;
        if (body.provider === 'sso') {
          if (body.team) teamId = (await findTeam(database, body.team))?.id;
          else if (body.email) teamId = await findSsoTeamForEmail(database, body.email);
          else {
            throw new TollgateError('validation_failed', 'team: name the team whose single sign-on to use', {
              hint: 'pass the team slug, or an email whose domain the team covers',
            });
          }
        }
        const { provider } = await providerFor(body.provider, teamId ?? null);
        const checks = {
          state: newState(),
          codeVerifier: oidc.randomPKCECodeVerifier(),
          ...(body.provider === 'github' ? {} : { nonce: oidc.randomNonce() }),
        };
        const authorizationUrl = await provider.authorizationUrl({ redirectUri: `${base}${callbackPath}`, checks });
        const created = await createOAuthLogin(database, keyring, {
          provider: body.provider,
          teamId,
          linkUserId: linkUser?.id,
          checks,
          returnTo: returnTo.toString(),
          clientState: body.state,
          clientCodeChallenge: body.code_challenge,
        });
        ctx.status = 201;
        ctx.body = { authorization_url: authorizationUrl.toString(), expires_at: created.expiresAt.toISOString() };
      },
    }),
    defineRoute({
      method: 'get',
      path: callbackPath,
      operationId: 'oauthCallback',
      summary: 'Where login providers send the browser back (not for API clients)',
      description:
        'Register this URL (with your TOLLGATE_PUBLIC_URL as its base) at GitHub, Google, Apple and team OpenID providers. ' +
        'Redirects the browser to the redirect_uri given at the start, with a one-time code or an error.',
      tags: ['auth'],
      responses: {
        302: { description: 'Back to the client' },
        400: { description: 'Unknown or expired login (HTML)' },
      },
      handler: (ctx) => handleCallback(ctx, new URLSearchParams(ctx.querystring)),
    }),
    defineRoute({
      method: 'post',
      path: callbackPath,
      operationId: 'oauthFormPostCallback',
      summary: 'The callback for providers that answer with a form POST (Sign in with Apple)',
      tags: ['auth'],
      responses: {
        302: { description: 'Back to the client' },
        400: { description: 'Unknown or expired login (HTML)' },
      },
      handler: (ctx) => handleCallback(ctx, new URLSearchParams(ctx.request.rawBody?.toString('utf8') ?? '')),
    }),
    defineRoute({
      method: 'post',
      path: '/v1/auth/oauth/token',
      operationId: 'exchangeOAuthLoginCode',
      summary: 'Exchange the one-time login code for a session',
      description:
        'Answers like POST /v1/auth/login: a session, or (two_factor_required) a challenge when the account has ' +
        'two-factor authentication. For a login started with `link: true`, answers the linked identity instead.',
      tags: ['auth'],
      body: z.object({ code: z.string().min(1).max(200), code_verifier: z.string().min(43).max(128) }),
      responses: {
        200: {
          description: 'Signed in, a second factor is needed, or the provider account was linked',
          schema: z.union([tokensSchema, twoFactorRequiredSchema, z.object({ linked: identitySchema })]),
        },
      },
      handler: async (ctx, { body }) => {
        const _client = clientOf(ctx);
        const invalid = () =>
          new TollgateError('invalid_login_code', 'the login code is unknown, expired or already used', {
            hint: 'start the login again',
          });
        const outcome = await database.transaction(async (tx) => {
          const login = await findOAuthLoginByCode(tx, keyring, body.code);
          if (!login?.userId || login.consumedAt || login.expiresAt.getTime() <= Date.now())
            return { error: invalid() };
          // Used up by this attempt whatever happens next: a wrong verifier burns the code.
          await consumeOAuthLogin(tx, login.stateHash);
          if (pkceChallengeOf(body.code_verifier) !== login.clientCodeChallenge) return { error: invalid() };
          const user = await findUserById(tx, login.userId);
          if (!user) return { error: invalid() };
          if (login.linkUserId) {
            const identities = await listIdentities(tx, user.id);
            const identity = identities.find(
              (item) => item.provider === login.provider && item.teamId === login.teamId,
            );
            return { linked: identity };
          }
          return {
            answer: await completeFirstFactor(tx, ctx, {
              user,
              signingKey,
              refreshTokens: options.refreshTokens,
              details: { provider: login.provider },
            }),
          };
        });
        if ('error' in outcome && outcome.error) {
          await recordAudit(
            database,
            auditEntry(ctx, {
              actorLabel: 'anonymous',
              action: 'auth.login_failed',
              outcome: 'failure',
              details: { reason: 'invalid_login_code' },
            }),
          );
          throw outcome.error;
        }
        if ('linked' in outcome) {
          if (!outcome.linked) throw invalid();
          ctx.body = { linked: identityBody(outcome.linked) };
        } else if ('answer' in outcome) {
          ctx.body = outcome.answer;
        }
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/me/identities',
      operationId: 'listIdentities',
      summary: 'The provider accounts linked to yours',
      tags: ['account'],
      responses: {
        200: {
          description: 'Linked identities',
          schema: z.object({ has_password: z.boolean(), identities: z.array(identitySchema) }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        const [identities, password] = await Promise.all([
          listIdentities(database, caller.user.id),
          database.query<{ has_password: boolean }>(
            'SELECT password_hash IS NOT NULL AS has_password FROM users WHERE id = $1',
            [caller.user.id],
          ),
        ]);
        ctx.body = {
          has_password: password.rows[0]?.has_password ?? false,
          identities: identities.map(identityBody),
        };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/me/identities/:id',
      operationId: 'unlinkIdentity',
      summary: 'Unlink a provider account from yours',
      description:
        'Refused with 409 `last_login_method` when it is your only way to log in (no password, no other identity).',
      tags: ['account'],
      responses: { 204: { description: 'Unlinked' } },
      handler: async (ctx) => {
        const caller = await authenticateSession(
          ctx,
          { database, signingKey },
          { action: 'unlinking a login provider' },
        );
        const id = (ctx as unknown as { params: Record<string, string> }).params.id ?? '';
        if (!/^[0-9a-f-]{36}$/i.test(id)) throw new TollgateError('not_found', 'no such linked identity');
        await database.transaction(async (tx) => {
          const result = await unlinkIdentity(tx, { userId: caller.user.id, identityId: id });
          if (result === 'not_found') throw new TollgateError('not_found', 'no such linked identity');
          if (result === 'last_login_method') {
            throw new TollgateError('last_login_method', 'this is your only way to log in', {
              hint: 'set a password (tollgate account reset-password) or link another provider first',
            });
          }
          await appendAuditEntry(
            tx,
            auditEntry(ctx, {
              actorUserId: caller.user.id,
              actorLabel: userLabel(caller.user.id),
              action: 'user.identity_unlinked',
              outcome: 'success',
              targetType: 'identity',
              targetId: id,
            }),
          );
        });
        ctx.status = 204;
      },
    }),
  ];
}
