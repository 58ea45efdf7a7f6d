import { randomBytes } from 'node:crypto';
import { createUserWithPassword, type InstallationRole } from '../../src/identity/users.js';
import type { TestApi } from './api.js';

/** The password of every account `signUp` makes unless the test names another. */
export const accountPassword = 'test account passphrase long 1';

/** A user who has signed in with a password: the session's tokens. */
export interface SignedInAccount {
  id: string;
  email: string;
  /** The session's access token, sent as `authorization: Bearer`. */
  token: string;
  refreshToken: string;
}

/**
 * Creates a user `<label>.<random>@example.com` in the API's database and signs in over
 * POST /v1/auth/login, as a member of the installation unless `installationRole` says admin. A suite
 * that runs its own server passes `{ database, server }`.
 */
export async function signUp(
  on: Pick<TestApi, 'database' | 'server'>,
  label: string,
  options: {
    installationRole?: InstallationRole;
    password?: string;
    name?: string;
    /** Sent with the login, e.g. a user-agent the session records. */
    headers?: Record<string, string>;
  } = {},
): Promise<SignedInAccount> {
  const email = `${label}.${randomBytes(4).toString('hex')}@example.com`;
  const password = options.password ?? accountPassword;
  const user = await on.database.transaction((tx) =>
    createUserWithPassword(tx, {
      email,
      password,
      ...(options.installationRole ? { installationRole: options.installationRole } : {}),
      ...(options.name === undefined ? {} : { name: options.name }),
    }),
  );
  const login = await callApi(on, undefined, 'POST', '/v1/auth/login', { email, password }, options);
  if (login.status !== 200) throw new Error(`signing in ${email} answered ${login.status}: ${login.text}`);
  return { id: user.id, email, token: login.body.access_token, refreshToken: login.body.refresh_token };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of many shapes; the assertions check them
export type Json = any;

/**
 * What the API answered. Only `status` and `body` are own fields, so that a suite can compare a whole
 * answer with `toEqual({ status, body })`; the headers and the raw body are read through getters.
 */
export class ApiAnswer {
  readonly status: number;
  /** The parsed JSON; undefined for an empty or PDF body. */
  readonly body: Json;
  readonly #headers: Headers;
  readonly #bytes: Buffer;

  constructor(status: number, headers: Headers, bytes: Buffer) {
    this.status = status;
    this.#headers = headers;
    this.#bytes = bytes;
    this.body = this.text !== '' && !this.type.startsWith('application/pdf') ? JSON.parse(this.text) : undefined;
  }

  get headers(): Headers {
    return this.#headers;
  }

  /** The content-type header, '' without one. */
  get type(): string {
    return this.#headers.get('content-type') ?? '';
  }

  /** The raw body (a PDF's bytes). */
  get bytes(): Buffer {
    return this.#bytes;
  }

  get text(): string {
    return this.#bytes.toString('utf8');
  }
}

/** Who calls: an account (its token), a bare token, or nobody (no authorization header). */
export type Caller = { token: string } | string | undefined;

/**
 * One HTTP request to the API: `body` goes out as JSON, the answer comes back parsed. A request
 * made without `on` being a whole TestApi (a suite's own server) passes `{ server }`.
 */
export async function callApi(
  on: Pick<TestApi, 'server'>,
  who: Caller,
  method: string,
  path: string,
  body?: unknown,
  options: { headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const token = typeof who === 'string' ? who : who?.token;
  const response = await fetch(`${on.server.url}${path}`, {
    method,
    headers: {
      ...options.headers,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return new ApiAnswer(response.status, response.headers, Buffer.from(await response.arrayBuffer()));
}

/**
 * `account` and `call` bound to a suite's API, which is started in `beforeAll` (hence the getter).
 */
export function accountsOn(
  api: () => TestApi,
  defaults: {
    password?: string;
    /** The users' display name; none when absent. */
    name?: string;
    /** Sent with every login and call. */
    headers?: Record<string, string>;
  } = {},
): {
  account(label: string, installationRole?: InstallationRole): Promise<SignedInAccount>;
  call(who: Caller, method: string, path: string, body?: unknown): Promise<ApiAnswer>;
} {
  return {
    account: (label, installationRole) =>
      signUp(api(), label, { ...(installationRole ? { installationRole } : {}), ...defaults }),
    call: (who, method, path, body) => callApi(api(), who, method, path, body, defaults),
  };
}
