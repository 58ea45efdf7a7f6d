export { evaluateAllAlerts, evaluateTeamAlerts, usageAlertJob } from './alerts/alert-evaluation.js';
export { type ApiApp, type ApiAppOptions, createApiApp } from './api/create-api-app.js';
export type { ApiDefinition } from './apis/api-definition.js';
export {
  type Api,
  bumpConfigVersion,
  type CreateApiInput,
  createApi,
  currentConfigVersion,
  deleteApi,
  findApi,
  listApiDefinitions,
  listApis,
  loadRoutingConfig,
  reservedApiSlugs,
  type UpdateApiInput,
  updateApi,
} from './apis/apis.js';
export {
  type ConfigBus,
  configChannel,
  configChannelFor,
  createInProcessConfigBus,
  openConfigBus,
  openRedisConfigBus,
  type RedisConfigBusOptions,
} from './apis/config-bus.js';
export * from './audit/index.js';
export {
  type BillingProvider,
  createManualBillingProvider,
  type ProviderSubscriptionState,
  type SubscriptionStatus,
} from './billing/billing-provider.js';
export {
  createCreditNote,
  getInvoice,
  type Invoice,
  invoiceBody,
  listInvoices,
  markInvoicePaid,
} from './billing/invoices.js';
export {
  type CloseBillingPeriodOptions,
  type CloseBillingPeriodReport,
  closeBillingPeriod,
  periodCloseJob,
} from './billing/period-close.js';
export { recordRevenueSnapshot, revenueSnapshotJob } from './billing/revenue-metrics.js';
export { createStripeBillingProvider } from './billing/stripe-billing-provider.js';
export { createStripeClient, idempotencyKey, type StripeClient } from './billing/stripe-client.js';
export {
  createStripeEventHandlers,
  newerStripeEventProcessed,
  processStripeEvents,
  type StripeEventContext,
  type StripeEventHandler,
  type StripeEventHandlers,
  stripeEventJob,
} from './billing/stripe-webhooks.js';
export { registerSubscriptionStripeHandlers } from './billing/subscription-stripe-events.js';
export {
  cancelSubscription,
  changeSubscriptionPlan,
  getSubscription,
  markSubscriptionPastDue,
  recordSubscriptionPayment,
  resumeSubscription,
  runSubscriptionLifecycle,
  type Subscription,
  type SubscriptionServiceOptions,
  subscribe,
  subscriptionLifecycleJob,
} from './billing/subscriptions.js';
export {
  type CounterConfig,
  configVariables,
  type DatabaseConfig,
  defaultRedisPrefix,
  type Env,
  isEmbedded,
  type LogLevel,
  loadConfig,
  type TollgateConfig,
} from './config/config.js';
export type { CounterDriver, CounterStore } from './counters/counter-store.js';
export { createMemoryCounterStore } from './counters/memory-counter-store.js';
export { openCounterStore } from './counters/open-counter-store.js';
export { creditExpiryJob, deliverLowBalanceAlerts, lowBalanceAlertJob } from './credits/credit-jobs.js';
export { grantCredits } from './credits/credit-ledger.js';
export { registerCreditPackStripeHandlers } from './credits/credit-purchases.js';
export {
  type DemoSetup,
  type DemoSetupOptions,
  demoPlan,
  demoSlug,
  setUpDemo,
} from './demo/demo-setup.js';
export { type EchoAnswer, startEchoUpstream } from './demo/echo-upstream.js';
export { type ErrorCode, httpStatusFor, isErrorCode } from './errors/error-codes.js';
export { isTollgateError, TollgateError, type TollgateErrorOptions } from './errors/tollgate-error.js';
export { checkReadiness, describeNotReady, type Readiness } from './health/readiness.js';
export { accessLog } from './http/access-log.js';
export { type ErrorBody, errorBody } from './http/error-body.js';
export { errorHandler } from './http/error-handler.js';
export { listen, type RunningServer } from './http/http-server.js';
export { createMetricsRegistry, httpMetrics } from './http/metrics.js';
export { newRequestId, requestId } from './http/request-id.js';
export { defineRoute, type Route } from './http/route.js';
export { type BootstrapResult, bootstrapFirstOperator } from './identity/operator-bootstrap.js';
export { hashPassword, passwordProblems, verifyPassword } from './identity/passwords.js';
export { accessTokenSigningKey } from './identity/sessions.js';
export { totpQrForTerminal } from './identity/two-factor.js';
export { createUserWithPassword } from './identity/users.js';
export { type Job, type JobRunner, startJobRunner } from './jobs/job-runner.js';
export { countLiveWorkers, workerHeartbeatJob } from './jobs/worker-heartbeat.js';
export {
  createApiKey,
  type KeyLimits,
  type KeyMethod,
  type KeyMode,
  loadKeyForVerification,
  recordKeyUse,
  type StoredApiKey,
} from './keys/api-keys.js';
export {
  createMemoryKeyEvents,
  createRedisKeyEvents,
  type KeyEvent,
  type KeyEvents,
  keyEventsChannel,
  keyEventsChannelFor,
  openKeyEvents,
} from './keys/key-events.js';
export { createLogger, type Logger, redactUrl } from './logging/logger.js';
export { billingPeriod } from './plans/billing-period.js';
export { createPlan } from './plans/plan-catalog.js';
export { loadQuotaStatus, type QuotaStatus } from './plans/quota-status.js';
export { loadTeamPolicy, type TeamPolicy } from './plans/team-policy.js';
export {
  createMemoryTeamPolicyEvents,
  openTeamPolicyEvents,
  type TeamPolicyEvent,
  type TeamPolicyEvents,
  teamPolicyEventsChannelFor,
} from './plans/team-policy-events.js';
export { createKeyring, type MasterKeyring, parseMasterKey, resolveMasterKeyring } from './secrets/master-keyring.js';
export type { Database, DatabaseDriver, Queryable, QueryResult } from './storage/database.js';
export { loadMigrations, type Migration, type MigrationReport, runMigrations } from './storage/migrate.js';
export { type Backends, openBackends } from './storage/open-backends.js';
export { openDatabase } from './storage/open-database.js';
export { type OpenedRedisClient, openRedisClient, type RedisConfig } from './storage/open-redis-client.js';
export { createTeam } from './teams/teams.js';
export { createMemoryUsageCounterStore } from './usage/memory-usage-counter-store.js';
export { openUsageCounterStore } from './usage/open-usage-counter-store.js';
export {
  createRedisUsageCounterStore,
  openRedisUsageCounterStore,
  type RedisUsageCounterStoreOptions,
  usageHashTagFor,
} from './usage/redis-usage-counter-store.js';
export {
  addCounts,
  emptyCounts,
  type UsageCell,
  type UsageCounterStore,
  type UsageCounts,
} from './usage/usage-counter-store.js';
export { type FlushReport, type FlushUsageOptions, flushUsage, usageFlushJob } from './usage/usage-flusher.js';
export { tollgateVersion } from './version.js';
export { deliverDueWebhooks, webhookDeliveryJob } from './webhooks/webhook-delivery.js';
export {
  enqueueTeamEvent,
  type WebhookEventType,
  webhookEventTypes,
} from './webhooks/webhook-events.js';
export { verifyWebhookSignature } from './webhooks/webhook-signature.js';
