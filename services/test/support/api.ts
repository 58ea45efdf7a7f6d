import { randomBytes } from 'node:crypto';
import { createApiApp } from '../../src/api/create-api-app.js';
import type { ConfigBus } from '../../src/apis/config-bus.js';
import type { CounterStore } from '../../src/counters/counter-store.js';
import { listen, type RunningServer } from '../../src/http/http-server.js';
import type { LoginProvidersConfig } from '../../src/identity/oauth/providers.js';
import type { RefreshTokenStore } from '../../src/identity/refresh-token-store.js';
import type { KeyEvents } from '../../src/keys/key-events.js';
import type { TeamPolicyEvents } from '../../src/plans/team-policy-events.js';
import { createKeyring, type MasterKeyring } from '../../src/secrets/master-keyring.js';
import type { SmsSender } from '../../src/sms/sms-sender.js';
import type { Database } from '../../src/storage/database.js';
import { runMigrations } from '../../src/storage/migrate.js';
import { openTestCounters, openTestDatabase, openTestRefreshTokens, silentLogger } from './backends.js';
import { createTestMailer, type MailFolder } from './mail.js';

export interface TestApi {
  server: RunningServer;
  database: Database;
  counters: CounterStore;
  /** Redis with TEST_REDIS_URL (under `refreshTokenKeyPrefix`), else the database. */
  refreshTokens: RefreshTokenStore;
  refreshTokenKeyPrefix: string;
  mail: MailFolder;
  /** Stops the server, then closes and removes what it used. */
  dispose(): Promise<void>;
}

/**
 * The control-plane API on a free port, over a fresh migrated database, the test counter store,
 * a mail folder and a new master key: what the HTTP suites run against.
 */
export async function startTestApi(
  options: {
    loginProviders?: LoginProvidersConfig;
    /** Allow team SSO issuers on loopback (the local OpenID provider of the tests). */
    ssoPrivateIssuers?: boolean;
    /** SMS codes go through it (a TwilioSmsSender aimed at the local Twilio server); none without. */
    sms?: SmsSender;
    /** A new random key when absent. */
    keyring?: MasterKeyring;
    /** API changes publish their configuration version on it; none when absent. */
    configBus?: ConfigBus;
    /** Key revocations and rotations are announced on it (gateway tests subscribe); none when absent. */
    keyEvents?: KeyEvents;
    /** Allow webhook endpoints on loopback (the receivers of the webhook tests). */
    webhooksAllowPrivate?: boolean;
    /** STRIPE_WEBHOOK_SECRET: POST /v1/stripe/webhook verifies with it; answers stripe_not_configured without. */
    stripeWebhookSecret?: string;
    /** STRIPE_SECRET_KEY and STRIPE_API_BASE (the local Stripe server): subscriptions go through Stripe. */
    stripe?: { secretKey: string; apiBase: string };
    /** Subscription changes invalidate team policies on it (gateway tests subscribe); none when absent. */
    teamPolicyEvents?: TeamPolicyEvents;
    /** TOLLGATE_BILLING_GRACE_DAYS; 7 when absent. */
    billingGraceDays?: number;
  } = {},
): Promise<TestApi> {
  const db = await openTestDatabase();
  const counters = await openTestCounters();
  const refreshTokens = await openTestRefreshTokens(db.value);
  const mail = await createTestMailer();
  await runMigrations(db.value);
  const { app } = createApiApp({
    config: {
      bodyLimitBytes: 64 * 1024,
      trustProxy: false,
      metricsToken: undefined,
      loginProviders: options.loginProviders,
      ssoPrivateIssuers: options.ssoPrivateIssuers,
      webhooksAllowPrivate: options.webhooksAllowPrivate,
      stripe:
        options.stripeWebhookSecret === undefined
          ? undefined
          : { webhookSecret: options.stripeWebhookSecret, ...(options.stripe ?? {}) },
      billingGraceDays: options.billingGraceDays,
    },
    database: db.value,
    counters: counters.value,
    logger: silentLogger(),
    keyring: options.keyring ?? createKeyring({ current: randomBytes(32) }),
    mailer: mail.mailer,
    refreshTokens: refreshTokens.value,
    sms: options.sms,
    configBus: options.configBus,
    ...(options.keyEvents ? { keyEvents: options.keyEvents } : {}),
    teamPolicyEvents: options.teamPolicyEvents,
  });
  const server = await listen(app.callback(), { host: '127.0.0.1', port: 0 });
  return {
    server,
    database: db.value,
    counters: counters.value,
    refreshTokens: refreshTokens.value,
    refreshTokenKeyPrefix: refreshTokens.keyPrefix,
    mail,
    async dispose() {
      await server.close(1_000);
      await mail.dispose();
      await counters.dispose();
      await refreshTokens.dispose();
      await db.dispose();
    },
  };
}
