import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import jwt from 'jsonwebtoken';
import * as oidc from 'openid-client';
import { TollgateError } from '../../errors/tollgate-error.js';
import { isPrivateAddress } from '../../http/private-address.js';

/** Where people can log in from besides a password. `sso` is a team's own OpenID provider. */
export const providerIds = ['github', 'google', 'apple', 'sso'] as const;
export type ProviderId = (typeof providerIds)[number];

export const providerLabels: Record<ProviderId, string> = {
  github: 'GitHub',
  google: 'Google',
  apple: 'Apple',
  sso: 'Single sign-on',
};

/** Installation-wide providers, from the environment (config.ts). */
export interface LoginProvidersConfig {
  github?: { clientId: string; clientSecret: string; url: string; apiUrl: string } | undefined;
  google?: { clientId: string; clientSecret: string; issuer: string } | undefined;
  apple?:
    | {
        clientId: string;
        issuer: string;
        /** A ready client secret (a JWT made beforehand), or the key to make one per request. */
        clientSecret?: string | undefined;
        signingKey?: { teamId: string; keyId: string; privateKey: string } | undefined;
      }
    | undefined;
}

/** Who the provider says the person is. */
export interface ProviderProfile {
  /** The provider's stable id of the account. */
  subject: string;
  email: string | undefined;
  /** True only when the provider vouches that the person controls `email`. */
  emailVerified: boolean;
  name: string | undefined;
}

/** The provider's tokens, kept sealed with the identity. */
export interface ProviderTokens {
  access_token: string;
  refresh_token?: string;
  expires_at?: string;
  scope?: string;
}

/** What our request to the provider must be checked against when the browser comes back. */
export interface ProviderChecks {
  state: string;
  codeVerifier: string;
  nonce?: string;
}

export interface LoginProvider {
  id: ProviderId;
  /** The provider answers with a form POST (Apple) instead of a redirect with a query. */
  formPost: boolean;
  authorizationUrl(input: { redirectUri: string; checks: ProviderChecks }): Promise<URL>;
  /**
   * Checks the provider's answer (state, PKCE, ID token signature, issuer, audience, nonce), redeems
   * the code and reads the profile. `response` holds the callback's parameters (query or form).
   */
  complete(input: {
    redirectUri: string;
    response: URLSearchParams;
    checks: ProviderChecks;
  }): Promise<{ profile: ProviderProfile; tokens: ProviderTokens }>;
}

const requestTimeoutSeconds = 10;

/** Plain http is only for a provider on this machine (development and tests); anything else needs https. */
export function isLoopbackUrl(url: URL): boolean {
  return ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

export function checkIssuerUrl(issuer: string, what = 'issuer'): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new TollgateError('validation_failed', `${what}: must be an https URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackUrl(url))) {
    throw new TollgateError('validation_failed', `${what}: must be an https URL (http only for 127.0.0.1/localhost)`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new TollgateError('validation_failed', `${what}: must not carry credentials, a query or a fragment`);
  }
  return url;
}

/**
 * A team's admin chooses the SSO issuer, and Tollgate fetches it: without this check they could
 * make the server reach addresses inside its own network (SSRF). The issuer's host must resolve to
 * public addresses only, unless the operator allows private ones (TOLLGATE_SSO_PRIVATE_ISSUERS, for
 * an identity provider inside the company network, and for development).
 */
export async function assertPublicIssuer(issuer: URL): Promise<void> {
  const host = issuer.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  try {
    addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
  } catch {
    throw new TollgateError('validation_failed', `issuer: the host ${host} does not resolve`);
  }
  const blocked = addresses.find((entry) => isPrivateAddress(entry.address));
  if (blocked) {
    throw new TollgateError('validation_failed', `issuer: ${host} is a private or loopback address`, {
      hint: 'an operator can allow private issuers with TOLLGATE_SSO_PRIVATE_ISSUERS=true',
    });
  }
}

function unavailable(provider: ProviderId, error: unknown): TollgateError {
  return new TollgateError(
    'provider_unavailable',
    `${providerLabels[provider]} could not be reached or answered badly`,
    {
      details: { provider, reason: (error as Error)?.message ?? String(error) },
    },
  );
}

/** Errors from openid-client while completing a login: the provider's refusal, or a failed check. */
function completionError(provider: ProviderId, error: unknown): TollgateError {
  if (error instanceof TollgateError) return error;
  if (error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError) {
    return new TollgateError('oauth_denied', `${providerLabels[provider]} refused the login: ${error.error}`, {
      details: {
        provider,
        error: error.error,
        ...(error.error_description ? { description: error.error_description } : {}),
      },
    });
  }
  const code = (error as { code?: string }).code;
  if (
    code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' ||
    code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' ||
    code === 'OAUTH_INVALID_RESPONSE'
  ) {
    return new TollgateError('oauth_denied', `${providerLabels[provider]}'s answer did not pass the checks`, {
      details: { provider, reason: (error as Error).message },
    });
  }
  return unavailable(provider, error);
}

function tokensOf(response: oidc.TokenEndpointResponse): ProviderTokens {
  return {
    access_token: response.access_token,
    ...(response.refresh_token ? { refresh_token: response.refresh_token } : {}),
    ...(typeof response.expires_in === 'number'
      ? { expires_at: new Date(Date.now() + response.expires_in * 1000).toISOString() }
      : {}),
    ...(response.scope ? { scope: response.scope } : {}),
  };
}

function callbackUrl(redirectUri: string, response: URLSearchParams): URL {
  const url = new URL(redirectUri);
  url.search = response.toString();
  return url;
}

function callbackInput(redirectUri: string, response: URLSearchParams, formPost: boolean): URL | Request {
  if (!formPost) return callbackUrl(redirectUri, response);
  return new Request(redirectUri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: response.toString(),
  });
}

function applyTransport(config: oidc.Configuration, issuer: URL): void {
  config.timeout = requestTimeoutSeconds;
  if (issuer.protocol === 'http:') oidc.allowInsecureRequests(config);
}

/** `true`, or the string "true" some providers (Apple) send. */
const truthy = (value: unknown) => value === true || value === 'true';

interface OidcOptions {
  id: ProviderId;
  issuer: string;
  clientId: string;
  /** How we prove who we are at the token endpoint; chosen from discovery when absent. */
  clientAuth?: oidc.ClientAuth;
  clientSecret: string;
  scope: string;
  formPost?: boolean;
  /** Extra profile fields from the callback (Apple sends the name once, in a `user` form field). */
  extraName?: (response: URLSearchParams) => string | undefined;
}

/** Token endpoint authentication for a discovered provider: the spec's default (Basic) unless it only takes POST. */
function chooseClientAuth(metadata: oidc.ServerMetadata, secret: string): oidc.ClientAuth {
  const supported = metadata.token_endpoint_auth_methods_supported;
  if (supported && !supported.includes('client_secret_basic') && supported.includes('client_secret_post')) {
    return oidc.ClientSecretPost(secret);
  }
  return oidc.ClientSecretBasic(secret);
}

function oidcProvider(options: OidcOptions): LoginProvider {
  const issuer = checkIssuerUrl(options.issuer);
  let discovered: Promise<oidc.Configuration> | undefined;
  const configuration = (): Promise<oidc.Configuration> => {
    discovered ??= (async () => {
      const found = await oidc.discovery(issuer, options.clientId, undefined, undefined, {
        timeout: requestTimeoutSeconds,
        ...(issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      const metadata = found.serverMetadata();
      const config = new oidc.Configuration(
        metadata,
        options.clientId,
        undefined,
        options.clientAuth ?? chooseClientAuth(metadata, options.clientSecret),
      );
      applyTransport(config, issuer);
      return config;
    })().catch((error: unknown) => {
      // A failed discovery is tried again on the next login instead of being remembered.
      discovered = undefined;
      throw unavailable(options.id, error);
    });
    return discovered;
  };
  return {
    id: options.id,
    formPost: options.formPost ?? false,
    async authorizationUrl({ redirectUri, checks }) {
      const config = await configuration();
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: options.scope,
        state: checks.state,
        ...(checks.nonce ? { nonce: checks.nonce } : {}),
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
        ...(options.formPost ? { response_mode: 'form_post' } : {}),
      });
    },
    async complete({ redirectUri, response, checks }) {
      const config = await configuration();
      try {
        const tokens = await oidc.authorizationCodeGrant(
          config,
          callbackInput(redirectUri, response, options.formPost ?? false),
          {
            pkceCodeVerifier: checks.codeVerifier,
            expectedState: checks.state,
            ...(checks.nonce ? { expectedNonce: checks.nonce } : {}),
            idTokenExpected: true,
          },
          { redirect_uri: redirectUri },
        );
        const claims = tokens.claims();
        if (!claims) throw new TollgateError('oauth_denied', `${providerLabels[options.id]} sent no ID token`);
        let email = typeof claims.email === 'string' ? claims.email : undefined;
        let emailVerified = truthy(claims.email_verified);
        let name = typeof claims.name === 'string' ? claims.name : undefined;
        if (!email && config.serverMetadata().userinfo_endpoint) {
          const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
          email = typeof info.email === 'string' ? info.email : undefined;
          emailVerified = truthy(info.email_verified);
          name ??= typeof info.name === 'string' ? info.name : undefined;
        }
        name ??= options.extraName?.(response);
        return { profile: { subject: claims.sub, email, emailVerified, name }, tokens: tokensOf(tokens) };
      } catch (error) {
        throw completionError(options.id, error);
      }
    },
  };
}

interface GitHubUser {
  id?: number;
  login?: string;
  name?: string | null;
}
interface GitHubEmail {
  email?: string;
  primary?: boolean;
  verified?: boolean;
}

async function githubGet<T>(apiUrl: string, path: string, token: string): Promise<T> {
  const response = await fetch(`${apiUrl.replace(/\/+$/, '')}${path}`, {
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/vnd.github+json',
      'user-agent': 'Tollgate',
      'x-github-api-version': '2022-11-28',
    },
    signal: AbortSignal.timeout(requestTimeoutSeconds * 1000),
  });
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
  return (await response.json()) as T;
}

/** GitHub speaks OAuth 2 without OpenID Connect: the profile comes from its REST API. */
function githubProvider(options: NonNullable<LoginProvidersConfig['github']>): LoginProvider {
  const base = checkIssuerUrl(options.url, 'TOLLGATE_GITHUB_URL');
  checkIssuerUrl(options.apiUrl, 'TOLLGATE_GITHUB_API_URL');
  const root = base.href.replace(/\/+$/, '');
  const config = new oidc.Configuration(
    {
      issuer: root,
      authorization_endpoint: `${root}/login/oauth/authorize`,
      token_endpoint: `${root}/login/oauth/access_token`,
    },
    options.clientId,
    undefined,
    oidc.ClientSecretPost(options.clientSecret),
  );
  applyTransport(config, base);
  return {
    id: 'github',
    formPost: false,
    async authorizationUrl({ redirectUri, checks }) {
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'read:user user:email',
        state: checks.state,
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
        allow_signup: 'true',
      });
    },
    async complete({ redirectUri, response, checks }) {
      try {
        const tokens = await oidc.authorizationCodeGrant(
          config,
          callbackUrl(redirectUri, response),
          { pkceCodeVerifier: checks.codeVerifier, expectedState: checks.state },
          { redirect_uri: redirectUri },
        );
        const [user, emails] = await Promise.all([
          githubGet<GitHubUser>(options.apiUrl, '/user', tokens.access_token),
          githubGet<GitHubEmail[]>(options.apiUrl, '/user/emails', tokens.access_token),
        ]);
        if (typeof user.id !== 'number') throw new Error('GET /user answered without an id');
        const verified = Array.isArray(emails) ? emails.filter((entry) => entry.verified && entry.email) : [];
        const chosen = verified.find((entry) => entry.primary) ?? verified[0];
        return {
          profile: {
            subject: String(user.id),
            email: chosen?.email,
            emailVerified: chosen !== undefined,
            name: user.name ?? user.login ?? undefined,
          },
          tokens: tokensOf(tokens),
        };
      } catch (error) {
        throw completionError('github', error);
      }
    },
  };
}

/**
 * Sign in with Apple's client secret: a short ES256 JWT signed with the key from Apple's developer
 * account (team id as issuer, the Services ID as subject, Apple as audience).
 */
export function appleClientSecret(
  input: { teamId: string; keyId: string; privateKey: string; clientId: string; audience: string },
  now = new Date(),
): string {
  const iat = Math.floor(now.getTime() / 1000);
  return jwt.sign({ iat, exp: iat + 300 }, input.privateKey, {
    algorithm: 'ES256',
    keyid: input.keyId,
    issuer: input.teamId,
    subject: input.clientId,
    audience: input.audience,
  });
}

/** Apple posts the person's name once, on the first login, as JSON in a `user` form field. */
function appleName(response: URLSearchParams): string | undefined {
  try {
    const user = JSON.parse(response.get('user') ?? 'null') as { name?: { firstName?: string; lastName?: string } };
    const parts = [user?.name?.firstName, user?.name?.lastName].filter((part) => typeof part === 'string' && part);
    return parts.length > 0 ? parts.join(' ').slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

function appleProvider(options: NonNullable<LoginProvidersConfig['apple']>): LoginProvider {
  const { signingKey, clientSecret } = options;
  const secret = () => {
    if (clientSecret) return clientSecret;
    if (!signingKey) throw new TollgateError('provider_not_configured', 'Sign in with Apple has no client secret');
    return appleClientSecret({
      ...signingKey,
      clientId: options.clientId,
      audience: options.issuer.replace(/\/+$/, ''),
    });
  };
  // Apple takes the client secret in the form body only, and a new one is made for each request.
  const clientAuth: oidc.ClientAuth = (_server, _client, body) => {
    body.set('client_id', options.clientId);
    body.set('client_secret', secret());
  };
  return oidcProvider({
    id: 'apple',
    issuer: options.issuer,
    clientId: options.clientId,
    clientSecret: '',
    clientAuth,
    scope: 'openid email name',
    formPost: true,
    extraName: appleName,
  });
}

/** The installation-wide providers that are configured, by id. */
export function createLoginProviders(config: LoginProvidersConfig): Partial<Record<ProviderId, LoginProvider>> {
  const providers: Partial<Record<ProviderId, LoginProvider>> = {};
  if (config.github) providers.github = githubProvider(config.github);
  if (config.google) {
    providers.google = oidcProvider({
      id: 'google',
      issuer: config.google.issuer,
      clientId: config.google.clientId,
      clientSecret: config.google.clientSecret,
      scope: 'openid email profile',
    });
  }
  if (config.apple) providers.apple = appleProvider(config.apple);
  return providers;
}

/** A team's own OpenID provider. Discovery is cached per team until its settings change. */
export function createSsoProvider(settings: { issuer: string; clientId: string; clientSecret: string }): LoginProvider {
  return oidcProvider({
    id: 'sso',
    issuer: settings.issuer,
    clientId: settings.clientId,
    clientSecret: settings.clientSecret,
    scope: 'openid email profile',
  });
}
