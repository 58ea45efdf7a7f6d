import type { RequestListener } from 'node:http';
import {
  createGatewayApp,
  createKeyVerifier,
  createMemoryLimiter,
  createTeamPolicyCache,
  createUsageRecorder,
  type GatewayApp,
  type KeyVerifier,
  type Limiter,
  liveRouting,
  openLimiter,
  type RoutingSource,
  type TeamPolicyCache,
  type UsageRecorder,
} from '@tollgate/gateway';
import {
  accessTokenSigningKey,
  type Backends,
  type BootstrapResult,
  bootstrapFirstOperator,
  createApiApp,
  createManualBillingProvider,
  createMetricsRegistry,
  createStripeBillingProvider,
  createStripeEventHandlers,
  creditExpiryJob,
  type DemoSetup,
  flushUsage,
  isTollgateError,
  type JobRunner,
  type Logger,
  listen,
  loadRoutingConfig,
  loadTeamPolicy,
  lowBalanceAlertJob,
  openBackends,
  openUsageCounterStore,
  periodCloseJob,
  type RunningServer,
  registerCreditPackStripeHandlers,
  registerSubscriptionStripeHandlers,
  revenueSnapshotJob,
  setUpDemo,
  startEchoUpstream,
  startJobRunner,
  stripeEventJob,
  subscriptionLifecycleJob,
  type TollgateConfig,
  type UsageCounterStore,
  usageAlertJob,
  usageFlushJob,
  webhookDeliveryJob,
  workerHeartbeatJob,
} from '@tollgate/services';

import { type Component, components } from './components.js';

export type { Component } from './components.js';

export interface StartOptions {
  config: TollgateConfig;
  logger: Logger;
  /** Which parts run in this process; all three by default. */
  only?: readonly Component[];
  /** Aborts a start-up that is still waiting for its database. */
  signal?: AbortSignal;
  /**
   * `tollgate start --demo`: run the echo upstream in this process and set up the demo API, plan,
   * team and (the first time, or with `newKey`) key. Needs the gateway in this process.
   */
  demo?: { newKey: boolean };
}

export interface RunningTollgate {
  backends: Backends;
  apiUrl: string | undefined;
  gatewayUrl: string | undefined;
  workerRunning: boolean;
  /** Set when this start created the installation's first operator, with a session for the local CLI. */
  operator: BootstrapResult | undefined;
  /** With `demo`: what the demo set-up made or found, and where its echo upstream listens. */
  demo: (DemoSetup & { upstreamUrl: string }) | undefined;
  /** Drains in-flight requests (up to the shutdown timeout), stops jobs, closes connections. */
  stop(): Promise<void>;
}

/**
 * Runs the control-plane API, the gateway and the background-job loop in this process (or the ones
 * named in `only`), on the configured backends. Migrations are applied before anything listens.
 */
export async function startTollgate(options: StartOptions): Promise<RunningTollgate> {
  const { config, logger } = options;
  const only = new Set<Component>(options.only ?? components);
  const backends = await openBackends(config, { logger, ...(options.signal ? { signal: options.signal } : {}) });
  const servers: RunningServer[] = [];
  let jobs: JobRunner | undefined;
  let apiUrl: string | undefined;
  let operator: BootstrapResult | undefined;
  let gatewayUrl: string | undefined;
  // Metering: the gateway counts into the store, the worker's flusher moves it to the rollups.
  let usageStore: UsageCounterStore | undefined;
  let usageRecorder: UsageRecorder | undefined;
  // The gateway's parts: routing snapshot, key cache, limiters.
  let routing: RoutingSource | undefined;
  let keyVerifier: KeyVerifier | undefined;
  let limiters: Limiter[] = [];
  let policies: TeamPolicyCache | undefined;
  let gateway: GatewayApp | undefined;
  let demo: (DemoSetup & { upstreamUrl: string }) | undefined;
  let echoUpstream: RunningServer | undefined;

  const stop = async () => {
    await Promise.allSettled(servers.map((server) => server.close(config.shutdownTimeoutMs)));
    await gateway?.close();
    // After the gateway, so calls it was still proxying to the demo's echo could finish.
    await echoUpstream?.close(config.shutdownTimeoutMs);
    await routing?.close();
    await keyVerifier?.close();
    policies?.close();
    await Promise.allSettled(limiters.map((limiter) => limiter.close()));
    limiters = [];
    await usageRecorder?.close();
    await jobs?.stop();
    if (jobs && usageStore) {
      // The last second of counts, so a clean stop loses nothing (in process, nothing else would).
      await flushUsage({ store: usageStore, database: backends.database, logger }).catch((error: unknown) =>
        logger.warn({ err: error }, 'could not flush usage at shutdown; the next flush will'),
      );
    }
    await usageStore?.close();
    await backends.close();
  };

  /** What the worker does with each Stripe event type. */
  const stripeHandlers = (stripe: NonNullable<TollgateConfig['stripe']>) => {
    const handlers = createStripeEventHandlers();
    registerSubscriptionStripeHandlers(handlers, {
      provider: createStripeBillingProvider(stripe),
      graceDays: config.billingGraceDays,
      teamPolicyEvents: backends.teamPolicyEvents,
      database: backends.database,
    });
    // payment_intent.succeeded grants a bought credit pack; charge.refunded takes it back.
    registerCreditPackStripeHandlers(handlers);
    return handlers;
  };

  const serve = async (handler: RequestListener, port: number, portSetting: string): Promise<string> => {
    const server = await listen(handler, { host: config.host, port, portSetting });
    servers.push(server);
    return server.url;
  };

  // One registry for the whole process, so the API's /metrics also shows the gateway's traffic.
  const registry = createMetricsRegistry();
  try {
    if (only.has('api')) {
      const { app } = createApiApp({
        config,
        database: backends.database,
        counters: backends.counters,
        logger,
        registry,
        keyring: backends.keyring,
        mailer: backends.mailer,
        sms: backends.sms,
        refreshTokens: backends.refreshTokens,
        configBus: backends.configBus,
        keyEvents: backends.keyEvents,
        teamPolicyEvents: backends.teamPolicyEvents,
      });
      apiUrl = await serve(app.callback(), config.apiPort, 'TOLLGATE_API_PORT');
      operator = await bootstrapFirstOperator(backends.database, {
        email: config.operatorEmail,
        signingKey: accessTokenSigningKey(backends.keyring),
        refreshTokens: backends.refreshTokens,
      }).catch((error: unknown) => {
        // Redis is down at the first start: the operator's session cannot get a refresh token, so
        // nothing was created. Serve anyway, as with Redis down at any start; the next start creates it.
        if (!isTollgateError(error) || error.code !== 'session_store_unavailable') throw error;
        logger.warn({ err: error }, 'the first operator will be created at the next start: Redis cannot be reached');
        return undefined;
      });
    }
    if (options.demo) {
      echoUpstream = await startEchoUpstream();
      const setup = await setUpDemo(backends.database, { upstreamUrl: echoUpstream.url, newKey: options.demo.newKey });
      demo = { ...setup, upstreamUrl: echoUpstream.url };
      // Other gateways on this database reload now; this process's gateway loads the new routing as it starts.
      if (setup.configVersion !== undefined) {
        await backends.configBus.publish(setup.configVersion).catch((error: unknown) => {
          logger.warn({ err: error }, 'could not announce the demo API; other gateways will find it when they poll');
        });
      }
    }
    if (only.has('gateway') || only.has('worker')) {
      usageStore = await openUsageCounterStore(config.counters, { logger, keyPrefix: config.redisPrefix });
    }
    if (only.has('gateway') && usageStore) {
      usageRecorder = createUsageRecorder({ store: usageStore, logger });
    }
    if (only.has('gateway')) {
      // Routing reloads when the control plane announces a new configuration version.
      routing = await liveRouting({
        load: () => loadRoutingConfig(backends.database),
        subscribe: (listener) => backends.configBus.subscribe(listener),
        logger: logger.child({ component: 'gateway' }),
      });
      keyVerifier = createKeyVerifier({ database: backends.database, events: backends.keyEvents, logger });
      const limiter = await openLimiter(config.counters, { logger, keyPrefix: config.redisPrefix });
      // For APIs with the fail-open policy while Redis cannot be reached.
      const fallback = createMemoryLimiter();
      limiters = [limiter, fallback];
      // Subscription changes (a payment lifting a 402) reach the cache at once, not after its TTL.
      policies = createTeamPolicyCache({
        load: (teamId) => loadTeamPolicy(backends.database, teamId),
        events: backends.teamPolicyEvents,
      });
      gateway = createGatewayApp({
        logger,
        trustProxy: config.trustProxy,
        registry,
        accessLogSample: config.accessLogSample,
        routing,
        keys: keyVerifier,
        limits: {
          limiter,
          fallback,
          policies,
        },
        ...(usageRecorder ? { usage: usageRecorder } : {}),
      });
      gatewayUrl = await serve(gateway.app.callback(), config.gatewayPort, 'TOLLGATE_GATEWAY_PORT');
    }
    if (only.has('worker')) {
      jobs = startJobRunner({
        jobs: [
          workerHeartbeatJob(backends.database),
          ...(usageStore ? [usageFlushJob({ store: usageStore, database: backends.database, logger })] : []),
          // Usage alerts read the rollups the flusher writes: they trail usage by up to a minute plus a flush.
          usageAlertJob({ database: backends.database, mailer: backends.mailer, logger }),
          webhookDeliveryJob({
            database: backends.database,
            keyring: backends.keyring,
            logger,
            allowPrivate: config.webhooksAllowPrivate,
          }),
          // Stripe events stored by POST /v1/stripe/webhook; types no handler takes are marked `ignored`.
          ...(config.stripe
            ? [stripeEventJob({ database: backends.database, handlers: stripeHandlers(config.stripe), logger })]
            : []),
          subscriptionLifecycleJob({
            database: backends.database,
            teamPolicyEvents: backends.teamPolicyEvents,
            logger,
            graceDays: config.billingGraceDays,
          }),
          revenueSnapshotJob({ database: backends.database, logger }),
          // Writes off expired credit every hour; low-balance crossings are emailed within a minute.
          creditExpiryJob({ database: backends.database, logger }),
          lowBalanceAlertJob({ database: backends.database, mailer: backends.mailer, logger }),
          // Invoices every ended billing period, then pushes it to Stripe when Stripe collects it.
          periodCloseJob({
            database: backends.database,
            provider: config.stripe ? createStripeBillingProvider(config.stripe) : createManualBillingProvider(),
            teamPolicyEvents: backends.teamPolicyEvents,
            logger,
            graceDays: config.billingGraceDays,
            paymentTermsDays: config.billingPaymentTermsDays,
          }),
        ],
        logger: logger.child({ component: 'worker' }),
      });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { backends, apiUrl, gatewayUrl, workerRunning: jobs !== undefined, operator, demo, stop };
}
