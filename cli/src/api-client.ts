import { CliError, exitCodes } from './cli-error.js';
import {
  loadCredentials,
  type StoredCredentials,
  withCredentialsLock,
  writeProfileCredentials,
} from './credentials.js';

export interface TokenResponse {
  access_token: string;
  expires_in: number;
  refresh_token: string;
  session_id: string;
  user: { id: string; email: string };
}

export function credentialsFrom(apiUrl: string, tokens: TokenResponse): StoredCredentials {
  return {
    api_url: apiUrl,
    user: { id: tokens.user.id, email: tokens.user.email },
    access_token: tokens.access_token,
    access_token_expires_at: new Date(Date.now() + tokens.expires_in * 1000).toISOString(),
    refresh_token: tokens.refresh_token,
    session_id: tokens.session_id,
  };
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export const notLoggedIn = (profile: string) =>
  new CliError('not_logged_in', `not logged in${profile === 'default' ? '' : ` (profile ${profile})`}`, {
    hint: 'run `tollgate login`, or set TOLLGATE_TOKEN',
    exitCode: exitCodes.notLoggedIn,
  });

/** Sends one request; network failures become `api_unreachable`, error bodies `code: message`. */
export async function request(
  apiUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string } = {},
): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(`${apiUrl}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        'user-agent': 'tollgate-cli',
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(
      'api_unreachable',
      `could not reach ${apiUrl} (${cause?.code ?? cause?.message ?? (error as Error).message})`,
      {
        hint: 'start Tollgate with `tollgate start`, or point --api-url (TOLLGATE_API_URL) at a running one',
      },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, body };
}

/** Hints for API error codes: the HTTP answer carries none, the CLI knows what to try next. */
const hints: Record<string, string> = {
  forbidden: 'ask an admin of the team (or an operator) for the permission',
  session_required: 'log in with `tollgate login` and run it without TOLLGATE_TOKEN',
  token_limit_reached: 'revoke tokens you no longer use: `tollgate tokens list`, then `tollgate tokens revoke <id>`',
};

/** Throws the API's error as `code: message` (exit 1) when the answer is not a success. */
export function expectOk(answer: { status: number; body: unknown }): unknown {
  if (answer.status >= 200 && answer.status < 300) return answer.body;
  const error = (answer.body as ErrorBody | undefined)?.error;
  const hint = error?.code === undefined ? undefined : hints[error.code];
  throw new CliError(error?.code ?? 'unexpected_response', error?.message ?? `the API answered ${answer.status}`, {
    ...(hint ? { hint } : {}),
  });
}

/** What TOLLGATE_TOKEN holds, going by its form (not checked with the API). */
export function tokenKind(token: string): 'personal_access_token' | 'access_token' | 'unknown' {
  if (token.startsWith('tgpat_')) return 'personal_access_token';
  if (/^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(token)) return 'access_token';
  return 'unknown';
}

/** TOLLGATE_TOKEN refused by the API: exit 4 with the API's reason (revoked, expired, ...). */
function environmentTokenRefused(answer: { body: unknown }): CliError {
  const reason = (answer.body as ErrorBody | undefined)?.error?.message ?? 'refused';
  return new CliError('not_logged_in', `the token in TOLLGATE_TOKEN was refused: ${reason}`, {
    hint: 'create a new one with `tollgate tokens create` (logged in), or unset TOLLGATE_TOKEN to use the stored login',
    exitCode: exitCodes.notLoggedIn,
  });
}

export interface Session {
  apiUrl: string;
  token: string;
  /** Undefined with TOLLGATE_TOKEN: nothing stored to update. */
  stored?: StoredCredentials;
}

const expiresSoon = (credentials: StoredCredentials) =>
  new Date(credentials.access_token_expires_at).getTime() - Date.now() <= 30_000;

/**
 * The bearer token for a signed-in command: TOLLGATE_TOKEN when set (CI), else the profile's stored
 * access token, refreshed (under a lock) when it is about to expire or when `forceRefresh` says the
 * API refused it.
 */
export async function signedIn(options: {
  profile: string;
  /** --api-url / TOLLGATE_API_URL, when given. */
  explicitApiUrl: string | undefined;
  /** Where TOLLGATE_TOKEN goes when no URL was given: the profile's or the default URL. */
  fallbackApiUrl: string;
  forceRefresh?: boolean;
}): Promise<Session> {
  const envToken = process.env.TOLLGATE_TOKEN;
  if (envToken) return { apiUrl: options.explicitApiUrl ?? options.fallbackApiUrl, token: envToken };
  const stored = await loadCredentials(options.profile);
  if (!stored) throw notLoggedIn(options.profile);
  const apiUrl = options.explicitApiUrl ?? stored.api_url;
  if (!options.forceRefresh && !expiresSoon(stored)) return { apiUrl, token: stored.access_token, stored };
  return withCredentialsLock(async () => {
    // Another process may have refreshed while we waited for the lock.
    const current = (await loadCredentials(options.profile)) ?? stored;
    if (current.refresh_token !== stored.refresh_token && !expiresSoon(current)) {
      return { apiUrl, token: current.access_token, stored: current };
    }
    const answer = await request(apiUrl, 'POST', '/v1/auth/refresh', {
      body: { refresh_token: current.refresh_token },
    });
    if (answer.status === 401) throw notLoggedIn(options.profile);
    const tokens = expectOk(answer) as TokenResponse;
    const next = credentialsFrom(apiUrl, tokens);
    await writeProfileCredentials(options.profile, next);
    return { apiUrl, token: next.access_token, stored: next };
  });
}

/** A signed-in request; a 401 means the session ended: exit 4 with the hint to log in. */
export async function authedRequest(
  session: Session,
  profile: string,
  method: string,
  path: string,
  body?: unknown,
  /** Gets a fresh session when the API refused the token (e.g. the signing key rotated). */
  refreshed?: () => Promise<Session>,
): Promise<unknown> {
  const send = (current: Session) =>
    request(current.apiUrl, method, path, { token: current.token, ...(body === undefined ? {} : { body }) });
  let answer = await send(session);
  if (answer.status === 401 && session.stored && refreshed) answer = await send(await refreshed());
  if (answer.status === 401) throw session.stored ? notLoggedIn(profile) : environmentTokenRefused(answer);
  return expectOk(answer);
}
