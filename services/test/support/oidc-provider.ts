import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata } from 'oidc-provider';

/** A person the test provider can sign in. */
export interface TestAccount {
  sub: string;
  email?: string;
  email_verified?: boolean | string;
  name?: string;
}

export interface TestOidcProvider {
  /** http://127.0.0.1:PORT: discovery is at <issuer>/.well-known/openid-configuration. */
  issuer: string;
  /** Registers the clients (their redirect URIs are known only once the API listens). */
  configure(clients: ClientMetadata[]): void;
  /** Who signs in at the next login prompt; `deny` makes the person press "cancel". */
  nextLogin(account: TestAccount | 'deny'): void;
  close(): Promise<void>;
}

/**
 * A real OpenID provider (the `oidc-provider` package, the certified implementation) on a free
 * port. Its login and consent prompts are answered by the test instead of a person: the account
 * given to `nextLogin` signs in and grants what the client asked for.
 */
export async function startOidcProvider(): Promise<TestOidcProvider> {
  const accounts = new Map<string, TestAccount>();
  let next: TestAccount | 'deny' | undefined;
  let provider: Provider | undefined;
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

  async function interaction(req: IncomingMessage, res: ServerResponse, op: Provider): Promise<void> {
    const details = await op.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      const chosen = next;
      if (chosen === 'deny') {
        await op.interactionFinished(req, res, { error: 'access_denied', error_description: 'the person cancelled' });
        return;
      }
      if (!chosen) {
        res.writeHead(500).end('the test did not choose who signs in (nextLogin)');
        return;
      }
      accounts.set(chosen.sub, chosen);
      await op.interactionFinished(req, res, { login: { accountId: chosen.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = new op.Grant({
      accountId: details.session?.accountId ?? '',
      clientId: String(details.params.client_id),
    });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    await op.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const server = createServer((req, res) => {
    const op = provider;
    if (!op) {
      res.writeHead(503).end('not configured yet');
      return;
    }
    if (req.url?.startsWith('/interaction/')) {
      interaction(req, res, op).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(error));
      });
      return;
    }
    void op.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    configure(clients) {
      provider = new Provider(issuer, {
        clients,
        jwks: { keys: [{ ...jwk, kid: 'test-key', use: 'sig', alg: 'RS256' } as never] },
        cookies: { keys: ['tollgate-test-cookie-key'] },
        claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
        // Like Google and Apple: the ID token carries the email it vouches for.
        conformIdTokenClaims: false,
        features: { devInteractions: { enabled: false } },
        interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
        pkce: { required: () => true },
        ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
        findAccount: (_ctx, sub) => {
          const account = accounts.get(sub);
          if (!account) return undefined;
          return { accountId: sub, claims: () => ({ ...account, sub }) as never };
        },
      });
      provider.proxy = false;
    },
    nextLogin(account) {
      next = account;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
