import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestGitHubUser {
  id: number;
  login: string;
  name?: string | null;
  emails: { email: string; primary: boolean; verified: boolean }[];
}

export interface TestGitHub {
  /** Base URL of github.com's stand-in (OAuth endpoints under /login/oauth/). */
  url: string;
  /** Base URL of api.github.com's stand-in. */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** Who approves the next authorization; `deny` presses "Cancel". */
  nextLogin(user: TestGitHubUser | 'deny'): void;
  /** Access tokens handed out, to look for them where they must not be. */
  issuedTokens: string[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A local server answering what Tollgate uses of GitHub: the OAuth web flow
 * (GET /login/oauth/authorize, POST /login/oauth/access_token, with PKCE) and the REST endpoints
 * GET /user and GET /user/emails, with GitHub's shapes and errors. The authorize page is approved
 * at once by the user given to `nextLogin`.
 */
export async function startGitHubServer(): Promise<TestGitHub> {
  const clientId = `Iv1.${randomBytes(8).toString('hex')}`;
  const clientSecret = randomBytes(20).toString('hex');
  let next: TestGitHubUser | 'deny' | undefined;
  const codes = new Map<string, { user: TestGitHubUser; redirectUri: string; challenge: string | null }>();
  const tokens = new Map<string, TestGitHubUser>();
  const issuedTokens: string[] = [];

  const server = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://github.test');
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirectUri = url.searchParams.get('redirect_uri');
      if (url.searchParams.get('client_id') !== clientId || !redirectUri) {
        res.writeHead(404).end('The client_id or redirect_uri is not valid');
        return;
      }
      const target = new URL(redirectUri);
      const state = url.searchParams.get('state');
      if (state) target.searchParams.set('state', state);
      if (next === 'deny' || !next) {
        target.searchParams.set('error', 'access_denied');
        target.searchParams.set('error_description', 'The user has denied your application access.');
      } else {
        const code = randomBytes(10).toString('hex');
        codes.set(code, {
          user: next,
          redirectUri,
          challenge:
            url.searchParams.get('code_challenge_method') === 'S256' ? url.searchParams.get('code_challenge') : null,
        });
        target.searchParams.set('code', code);
      }
      res.writeHead(302, { location: target.toString() }).end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      void readBody(req).then((raw) => {
        const form = new URLSearchParams(raw);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        // GitHub answers errors of this endpoint with 200 and an error body.
        if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
          json(200, {
            error: 'incorrect_client_credentials',
            error_description: 'The client_id and/or client_secret passed are incorrect.',
          });
          return;
        }
        const verifier = form.get('code_verifier') ?? '';
        const pkceOk =
          grant?.challenge === null || createHash('sha256').update(verifier).digest('base64url') === grant?.challenge;
        if (!grant || grant.redirectUri !== form.get('redirect_uri') || !pkceOk) {
          json(200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
          return;
        }
        const token = `gho_${randomBytes(18).toString('base64url')}`;
        tokens.set(token, grant.user);
        issuedTokens.push(token);
        json(200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
      });
      return;
    }
    if (req.method === 'GET' && (url.pathname === '/api/user' || url.pathname === '/api/user/emails')) {
      const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const user = tokens.get(token);
      if (!user) {
        json(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
        return;
      }
      if (url.pathname === '/api/user') json(200, { id: user.id, login: user.login, name: user.name ?? null });
      else
        json(
          200,
          user.emails.map((email) => ({ ...email, visibility: email.primary ? 'private' : null })),
        );
      return;
    }
    json(404, { message: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    apiUrl: `${url}/api`,
    clientId,
    clientSecret,
    issuedTokens,
    nextLogin(user) {
      next = user;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
