import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expectOk, request } from './api-client.js';
import { CliError } from './cli-error.js';

export const loginProviders = ['github', 'google', 'apple', 'sso'] as const;
export type LoginProvider = (typeof loginProviders)[number];

const labels: Record<LoginProvider, string> = {
  github: 'GitHub',
  google: 'Google',
  apple: 'Apple',
  sso: 'single sign-on',
};

/** How long the CLI waits for the browser to come back. */
const waitMs = 5 * 60 * 1000;

const page = (title: string, message: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title>` +
  '<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">' +
  `<h1>${title}</h1><p>${message}</p></body>`;

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** Opens a URL in the desktop's browser; failing quietly is fine, since the URL is also printed. */
export function openInBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url.replace(/&/g, '^&')]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(command, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No opener on this machine: the printed URL is the way.
  }
}

interface Callback {
  code?: string;
  error?: string;
  errorDescription?: string;
}

/**
 * A one-shot HTTP server on a free loopback port (RFC 8252 section 7.3) that waits for the browser
 * to come back with our `state`. Requests with another state are answered 400 and ignored, so a
 * page elsewhere cannot end the login.
 */
async function listenForCallback(
  state: string,
): Promise<{ redirectUri: string; result: Promise<Callback>; close(): void }> {
  let resolve!: (value: Callback) => void;
  const result = new Promise<Callback>((done) => {
    resolve = done;
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback' || url.searchParams.get('state') !== state) {
      res
        .writeHead(400, { 'content-type': 'text/html; charset=utf-8' })
        .end(page('Not this login', 'This page does not belong to the login in progress.'));
      return;
    }
    const error = url.searchParams.get('error') ?? undefined;
    const description = url.searchParams.get('error_description') ?? undefined;
    res
      .writeHead(error ? 400 : 200, { 'content-type': 'text/html; charset=utf-8', connection: 'close' })
      .end(
        error
          ? page('Login failed', `${escapeHtml(error)}: ${escapeHtml(description ?? '')}. You can close this tab.`)
          : page('Logged in', 'You are logged in to Tollgate. You can close this tab and go back to the terminal.'),
      );
    resolve({
      ...(url.searchParams.get('code') ? { code: url.searchParams.get('code') as string } : {}),
      ...(error ? { error } : {}),
      ...(description ? { errorDescription: description } : {}),
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    result,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * Logs in (or, with `linkToken`, links a provider) through a browser: asks the API for the
 * provider's URL, prints it (and opens it unless told not to), waits on a loopback port for the
 * browser to come back, and exchanges the one-time code with the PKCE verifier only this process
 * knows. Returns the API's answer to POST /v1/auth/oauth/token.
 */
export async function browserLogin(options: {
  apiUrl: string;
  provider: LoginProvider;
  team?: string | undefined;
  email?: string | undefined;
  linkToken?: string | undefined;
  openBrowser: boolean;
  /** Prints to standard error. */
  note: (message: string) => void;
}): Promise<unknown> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const listener = await listenForCallback(state);
  try {
    const started = expectOk(
      await request(options.apiUrl, 'POST', '/v1/auth/oauth/start', {
        body: {
          provider: options.provider,
          redirect_uri: listener.redirectUri,
          state,
          code_challenge: challenge,
          code_challenge_method: 'S256',
          ...(options.team ? { team: options.team } : {}),
          ...(options.email ? { email: options.email } : {}),
          ...(options.linkToken ? { link: true } : {}),
        },
        ...(options.linkToken ? { token: options.linkToken } : {}),
      }),
    ) as { authorization_url: string };
    options.note(`Open this URL in a browser on this machine to continue with ${labels[options.provider]}:`);
    options.note(`  ${started.authorization_url}`);
    if (options.openBrowser) openInBrowser(started.authorization_url);
    options.note('Waiting for the browser...');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(
        () =>
          fail(
            new CliError('login_timeout', `the browser did not come back within ${waitMs / 60_000} minutes`, {
              hint: 'run the command again',
            }),
          ),
        waitMs,
      );
    });
    const callback = await Promise.race([listener.result, timeout]).finally(() => clearTimeout(timer));
    if (callback.error || !callback.code) {
      throw new CliError(callback.error ?? 'oauth_denied', callback.errorDescription ?? 'the login did not complete');
    }
    return expectOk(
      await request(options.apiUrl, 'POST', '/v1/auth/oauth/token', {
        body: { code: callback.code, code_verifier: verifier },
      }),
    );
  } finally {
    listener.close();
  }
}
