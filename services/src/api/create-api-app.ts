import Router from '@koa/router';
import Koa from 'koa';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { alertRoutes } from '../alerts/alert-routes.js';
import { apiRoutes } from '../apis/api-routes.js';
import type { ConfigBus } from '../apis/config-bus.js';
import { pluginRoutes } from '../apis/plugin-routes.js';
import { auditRoutes } from '../audit/audit-routes.js';
import { type BillingProvider, createManualBillingProvider } from '../billing/billing-provider.js';
import { exchangeRateRoutes } from '../billing/exchange-rate-routes.js';
import { invoiceRoutes } from '../billing/invoice-routes.js';
import type { Currency } from '../billing/pricing-schema.js';
import { revenueMetricsRoutes } from '../billing/revenue-metrics-routes.js';
import { createStripeBillingProvider } from '../billing/stripe-billing-provider.js';
import { reconciliationRoutes } from '../billing/stripe-reconciliation-routes.js';
import { stripeWebhookRoutes } from '../billing/stripe-webhooks.js';
import { planMigrationRoutes } from '../billing/subscription-migration-routes.js';
import { subscriptionRoutes } from '../billing/subscription-routes.js';
import type { StripeConfig, TollgateConfig } from '../config/config.js';
import type { CounterStore } from '../counters/counter-store.js';
import { creditRoutes } from '../credits/credit-routes.js';
import { healthRoutes } from '../health/health-routes.js';
import { accessLog } from '../http/access-log.js';
import { errorHandler } from '../http/error-handler.js';
import { jsonBody } from '../http/json-body.js';
import { createMetricsRegistry, httpMetrics, metricsRoute } from '../http/metrics.js';
import { buildOpenApiDocument } from '../http/openapi.js';
import { requestId } from '../http/request-id.js';
import { defineRoute, mountRoutes, type Route } from '../http/route.js';
import { accountRoutes } from '../identity/account-routes.js';
import { authRoutes } from '../identity/auth-routes.js';
import { oauthRoutes } from '../identity/oauth/oauth-routes.js';
import type { LoginProvidersConfig } from '../identity/oauth/providers.js';
import { ssoRoutes } from '../identity/oauth/sso-routes.js';
import { personalAccessTokenRoutes } from '../identity/personal-access-token-routes.js';
import { createPostgresRefreshTokenStore } from '../identity/postgres-refresh-token-store.js';
import { privacyRoutes } from '../identity/privacy-routes.js';
import type { RefreshTokenStore } from '../identity/refresh-token-store.js';
import { accessTokenSigningKey } from '../identity/sessions.js';
import { twoFactorRoutes } from '../identity/two-factor-routes.js';
import { createMemoryKeyEvents, type KeyEvents } from '../keys/key-events.js';
import { keyRoutes } from '../keys/key-routes.js';
import type { Logger } from '../logging/logger.js';
import type { Mailer } from '../mail/mailer.js';
import { planRoutes } from '../plans/plan-routes.js';
import type { TeamPolicyEvents } from '../plans/team-policy-events.js';
import type { MasterKeyring } from '../secrets/master-keyring.js';
import { secretsRoutes } from '../secrets/secrets-routes.js';
import type { SmsSender } from '../sms/sms-sender.js';
import type { Database } from '../storage/database.js';
import { teamRoutes } from '../teams/team-routes.js';
import { usageRoutes } from '../usage/usage-routes.js';
import { tollgateVersion } from '../version.js';
import { webhookRoutes } from '../webhooks/webhook-routes.js';

export interface ApiAppOptions {
  config: Pick<TollgateConfig, 'bodyLimitBytes' | 'trustProxy' | 'metricsToken'> & {
    publicUrl?: string | undefined;
    /** GitHub, Google and Apple logins; none when absent. */
    loginProviders?: LoginProvidersConfig | undefined;
    /** Allow team SSO issuers on private and loopback addresses. */
    ssoPrivateIssuers?: boolean | undefined;
    /** Allow webhook endpoints on private and loopback addresses (TOLLGATE_WEBHOOKS_ALLOW_PRIVATE). */
    webhooksAllowPrivate?: boolean | undefined;
    /** Stripe's webhook signing secret; without it POST /v1/stripe/webhook answers stripe_not_configured. */
    stripe?: (Pick<StripeConfig, 'webhookSecret'> & Partial<Pick<StripeConfig, 'secretKey' | 'apiBase'>>) | undefined;
    /** TOLLGATE_BILLING_GRACE_DAYS; 7 when absent. */
    billingGraceDays?: number | undefined;
    /** TOLLGATE_BILLING_PAYMENT_TERMS_DAYS; 14 when absent. */
    billingPaymentTermsDays?: number | undefined;
    /** TOLLGATE_BASE_CURRENCY: exchange rates convert into it; USD when absent. */
    baseCurrency?: Currency | undefined;
  };
  database: Database;
  counters: CounterStore;
  logger: Logger;
  keyring: MasterKeyring;
  /** Sends verification links, password resets, invitations and email codes. */
  mailer: Mailer;
  /** Sends SMS codes; without it, SMS as a second factor answers `sms_not_configured`. */
  sms?: SmsSender | undefined;
  /**
   * Where refresh tokens live: `Backends.refreshTokens` (Redis when configured). Defaults to the
   * `refresh_tokens` table of `database`, which is right only when no Redis is configured.
   */
  refreshTokens?: RefreshTokenStore;
  /**
   * Where API changes announce the new routing configuration version (`Backends.configBus`).
   * Without it, gateways see changes only when they poll `currentConfigVersion`.
   */
  configBus?: ConfigBus | undefined;
  /** Defaults to a new registry with the process metrics. */
  registry?: Registry;
  /**
   * Where key revocations and rotations are announced: `Backends.keyEvents`, which the gateways
   * subscribe to. Defaults to an in-process bus nobody listens on (an API without gateways).
   */
  keyEvents?: KeyEvents;
  /** Where subscription changes invalidate the gateways' team policies: `Backends.teamPolicyEvents`. */
  teamPolicyEvents?: TeamPolicyEvents | undefined;
  /**
   * Who collects subscriptions: Stripe when `config.stripe` has a secret key, else the manual
   * provider; tests may pass their own.
   */
  billingProvider?: BillingProvider;
}

export interface ApiApp {
  app: Koa;
  routes: readonly Route[];
  registry: Registry;
}

/**
 * The control-plane HTTP API. Every answer carries X-Request-Id; every failure is the JSON error
 * shape; every route is described by zod schemas that also produce /v1/openapi.json.
 */
export function createApiApp(options: ApiAppOptions): ApiApp {
  const registry = options.registry ?? createMetricsRegistry();
  const logger = options.logger.child({ component: 'api' });
  const signingKey = accessTokenSigningKey(options.keyring);
  const auditKey = options.keyring.deriveKey('audit-email-pseudonyms');
  const refreshTokens = options.refreshTokens ?? createPostgresRefreshTokenStore(options.database);
  const stripeConfig = options.config.stripe;
  const billingProvider =
    options.billingProvider ??
    (stripeConfig?.secretKey
      ? createStripeBillingProvider({
          secretKey: stripeConfig.secretKey,
          webhookSecret: stripeConfig.webhookSecret,
          apiBase: stripeConfig.apiBase,
        })
      : createManualBillingProvider());
  const routes: Route[] = [
    ...healthRoutes(options),
    metricsRoute({ registry, token: options.config.metricsToken }),
    ...(authRoutes({
      database: options.database,
      signingKey,
      auditKey,
      counters: options.counters,
      refreshTokens,
    }) as Route[]),
    ...(accountRoutes({
      database: options.database,
      auditKey,
      mailer: options.mailer,
      signingKey,
      publicUrl: options.config.publicUrl,
      logger,
      counters: options.counters,
      refreshTokens,
    }) as Route[]),
    ...(oauthRoutes({
      database: options.database,
      keyring: options.keyring,
      signingKey,
      counters: options.counters,
      publicUrl: options.config.publicUrl,
      providers: options.config.loginProviders ?? {},
      privateIssuers: options.config.ssoPrivateIssuers,
      refreshTokens,
    }) as Route[]),
    ...(ssoRoutes({
      database: options.database,
      keyring: options.keyring,
      signingKey,
      privateIssuers: options.config.ssoPrivateIssuers,
    }) as Route[]),
    ...(auditRoutes({ database: options.database, signingKey }) as Route[]),
    ...(privacyRoutes({ database: options.database, signingKey, refreshTokens }) as Route[]),
    ...(personalAccessTokenRoutes({ database: options.database, signingKey }) as Route[]),
    ...(secretsRoutes({ database: options.database, signingKey, keyring: options.keyring }) as Route[]),
    ...(twoFactorRoutes({
      database: options.database,
      signingKey,
      keyring: options.keyring,
      mailer: options.mailer,
      sms: options.sms,
      refreshTokens,
    }) as Route[]),
    ...(teamRoutes({
      database: options.database,
      auditKey,
      signingKey,
      mailer: options.mailer,
      publicUrl: options.config.publicUrl,
    }) as Route[]),
    ...(apiRoutes({
      database: options.database,
      signingKey,
      configBus: options.configBus,
      keyEvents: options.keyEvents,
      logger,
    }) as Route[]),
    ...(pluginRoutes({ database: options.database, signingKey }) as Route[]),
    ...(keyRoutes({
      database: options.database,
      signingKey,
      keyEvents: options.keyEvents ?? createMemoryKeyEvents({ logger }),
      logger,
    }) as Route[]),
    ...(usageRoutes({ database: options.database, signingKey }) as Route[]),
    ...(alertRoutes({ database: options.database, signingKey }) as Route[]),
    ...(exchangeRateRoutes({
      database: options.database,
      signingKey,
      baseCurrency: options.config.baseCurrency ?? 'USD',
    }) as Route[]),
    ...(revenueMetricsRoutes({
      database: options.database,
      signingKey,
      baseCurrency: options.config.baseCurrency ?? 'USD',
    }) as Route[]),
    ...(reconciliationRoutes({
      database: options.database,
      signingKey,
      stripe: stripeConfig?.secretKey
        ? {
            secretKey: stripeConfig.secretKey,
            webhookSecret: stripeConfig.webhookSecret,
            apiBase: stripeConfig.apiBase,
          }
        : undefined,
    }) as Route[]),
    ...(webhookRoutes({
      database: options.database,
      signingKey,
      keyring: options.keyring,
      allowPrivate: options.config.webhooksAllowPrivate ?? false,
    }) as Route[]),
    ...(planRoutes({ database: options.database, signingKey }) as Route[]),
    ...(creditRoutes({
      database: options.database,
      signingKey,
      provider: billingProvider,
      returnUrl: options.config.publicUrl,
    }) as Route[]),
    ...(subscriptionRoutes({
      database: options.database,
      signingKey,
      provider: billingProvider,
      graceDays: options.config.billingGraceDays ?? 7,
      teamPolicyEvents: options.teamPolicyEvents,
      logger,
      returnUrl: options.config.publicUrl,
    }) as Route[]),
    ...(planMigrationRoutes({
      database: options.database,
      signingKey,
      provider: billingProvider,
      graceDays: options.config.billingGraceDays ?? 7,
      teamPolicyEvents: options.teamPolicyEvents,
      logger,
    }) as Route[]),
    ...(invoiceRoutes({
      database: options.database,
      signingKey,
      provider: billingProvider,
      graceDays: options.config.billingGraceDays ?? 7,
      paymentTermsDays: options.config.billingPaymentTermsDays ?? 14,
      teamPolicyEvents: options.teamPolicyEvents,
      logger,
    }) as Route[]),
    ...stripeWebhookRoutes({
      database: options.database,
      webhookSecret: options.config.stripe?.webhookSecret,
      logger,
    }),
  ];
  let openApiDocument: Record<string, unknown> | undefined;
  routes.push(
    defineRoute({
      method: 'get',
      path: '/v1/openapi.json',
      operationId: 'getOpenApiDocument',
      summary: 'This API described in OpenAPI 3.1',
      tags: ['meta'],
      responses: { 200: { description: 'The OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
      handler: (ctx) => {
        openApiDocument ??= buildOpenApiDocument(routes, {
          title: 'Tollgate control-plane API',
          version: tollgateVersion,
          description:
            'Manage APIs, keys, plans, usage and billing. Every error answers {"error":{"code","message","request_id"}}.',
        });
        ctx.body = openApiDocument;
      },
    }),
  );

  const app = new Koa({ proxy: options.config.trustProxy });
  // Errors are answered and logged by errorHandler; Koa's own stderr printing would duplicate them.
  app.silent = true;
  app.on('error', (error: Error) => logger.error({ err: error }, 'error outside a request handler'));

  const router = new Router();
  mountRoutes(router, routes);
  app
    .use(requestId())
    .use(accessLog({ logger }))
    .use(httpMetrics({ registry, component: 'api' }))
    .use(errorHandler({ logger }))
    .use(jsonBody({ limitBytes: options.config.bodyLimitBytes }))
    .use(router.routes())
    .use(router.allowedMethods());
  return { app, routes, registry };
}
