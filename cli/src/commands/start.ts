import { Flags } from '@oclif/core';
import { TollgateCommand } from '../base-command.js';
import { CliError, exitCodes } from '../cli-error.js';
import { type Component, components } from '../runtime/components.js';

/** Flags of `start` and the variable each one sets; the flag wins over the variable. */
const settingFlags = {
  host: 'TOLLGATE_HOST',
  'api-port': 'TOLLGATE_API_PORT',
  'gateway-port': 'TOLLGATE_GATEWAY_PORT',
  'data-dir': 'TOLLGATE_DATA_DIR',
  'log-level': 'TOLLGATE_LOG_LEVEL',
} as const;

function parseOnly(value: string | undefined): Component[] | undefined {
  if (value === undefined) return undefined;
  const parts = value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const unknown = parts.filter((part) => !(components as readonly string[]).includes(part));
  if (parts.length === 0 || unknown.length > 0) {
    throw new CliError(
      'usage_error',
      `--only (TOLLGATE_ONLY) must list parts among ${components.join(', ')}${unknown.length > 0 ? `; unknown: ${unknown.join(', ')}` : ''}`,
      { exitCode: exitCodes.usage, hint: 'for example --only api,worker' },
    );
  }
  return [...new Set(parts)] as Component[];
}

export default class Start extends TollgateCommand<typeof Start> {
  static override summary = 'Run Tollgate: the control-plane API, the gateway and the background worker.';

  static override description =
    `Runs everything in this one process. With no DATABASE_URL and no REDIS_URL it uses the embedded default: PGlite (real PostgreSQL compiled to WebAssembly) under .tollgate/data and in-process counters, with no servers to install. With DATABASE_URL (PostgreSQL) and REDIS_URL or REDIS_CLUSTER_NODES it uses those servers.

Database migrations are applied before anything listens. Ctrl-C (SIGINT) or SIGTERM stops accepting connections, lets in-flight requests finish (up to TOLLGATE_SHUTDOWN_TIMEOUT), then closes every connection; a second Ctrl-C stops at once.

Settings (environment variables; see docs/configuration.md):
  DATABASE_URL               PostgreSQL URL (unset: embedded PGlite)
  REDIS_URL                  Redis URL (unset: in-process counters)
  REDIS_CLUSTER_NODES        host:port,... of a Redis Cluster instead
  TOLLGATE_REDIS_PREFIX      before every Redis key and channel, so
                             installations can share a Redis (tollgate:)
  TOLLGATE_HOST              interface to listen on (127.0.0.1)
  TOLLGATE_API_PORT          control-plane API port (4000; 0: any free)
  TOLLGATE_GATEWAY_PORT      gateway port (8080; 0: any free)
  TOLLGATE_DATA_DIR          embedded database folder (.tollgate/data)
  TOLLGATE_LOG_LEVEL         fatal ... trace, silent (info); to stderr
  TOLLGATE_BODY_LIMIT        largest API request body (1mb)
  TOLLGATE_SHUTDOWN_TIMEOUT  longest drain on stop (10s)
  TOLLGATE_TRUST_PROXY       trust X-Forwarded-* headers (false)
  TOLLGATE_METRICS_TOKEN     bearer token GET /metrics requires (none)
  TOLLGATE_ACCESS_LOG_SAMPLE share of gateway calls logged, 0 to 1 (1)
  TOLLGATE_MASTER_KEY        32-byte base64 key for secrets at rest
                             (unset: generated into the data dir)
  TOLLGATE_MASTER_KEY_PREVIOUS  older keys, comma-separated, for rotation
  TOLLGATE_OPERATOR_EMAIL    first operator's email (admin@localhost)
  SMTP_URL                   smtp(s)://user:pass@host:port for mail
                             (unset: .eml files in TOLLGATE_MAIL_DIR)
  TOLLGATE_MAIL_FROM         sender (Tollgate <no-reply@localhost>)
  TOLLGATE_MAIL_DIR          folder of mail files (.tollgate/mail)
  TOLLGATE_PUBLIC_URL        base URL in emailed links (the API's URL)
  TWILIO_ACCOUNT_SID         AC... Twilio account for SMS codes
                             (unset: .txt files in TOLLGATE_SMS_DIR)
  TWILIO_AUTH_TOKEN          that account's auth token
  TWILIO_FROM                sender: +E.164 number or MG... service
  TWILIO_API_BASE            Twilio API URL (https://api.twilio.com)
  TOLLGATE_SMS_DIR           folder of SMS files (.tollgate/sms)
  TOLLGATE_GITHUB_CLIENT_ID, TOLLGATE_GITHUB_CLIENT_SECRET
                             log in with GitHub (an OAuth app)
  TOLLGATE_GITHUB_URL, TOLLGATE_GITHUB_API_URL
                             GitHub Enterprise hosts (github.com)
  TOLLGATE_GOOGLE_CLIENT_ID, TOLLGATE_GOOGLE_CLIENT_SECRET
                             log in with Google
  TOLLGATE_GOOGLE_ISSUER     (https://accounts.google.com)
  TOLLGATE_APPLE_CLIENT_ID   Services ID for Sign in with Apple, with
  TOLLGATE_APPLE_TEAM_ID, TOLLGATE_APPLE_KEY_ID, TOLLGATE_APPLE_PRIVATE_KEY
                             (or a ready TOLLGATE_APPLE_CLIENT_SECRET)
  TOLLGATE_APPLE_ISSUER      (https://appleid.apple.com)
  TOLLGATE_SSO_PRIVATE_ISSUERS  allow team SSO issuers on private or
                             loopback addresses (false)
  TOLLGATE_WEBHOOKS_ALLOW_PRIVATE  allow webhook endpoints on private
                             or loopback addresses (false)
  TOLLGATE_BASE_CURRENCY     reporting currency exchange rates
                             convert into: USD, EUR or GBP (USD)
  STRIPE_SECRET_KEY          sk_test_/sk_live_/rk_ key: billing through
                             Stripe (unset: no Stripe)
  STRIPE_WEBHOOK_SECRET      whsec_... signing secret of the webhook
                             endpoint (set with STRIPE_SECRET_KEY)
  STRIPE_API_BASE            Stripe API URL (https://api.stripe.com)
  TOLLGATE_BILLING_GRACE_DAYS  days a past_due subscription is still
                             served before the gateway answers 402 (7)
  TOLLGATE_BILLING_PAYMENT_TERMS_DAYS  days a manual invoice has to be
                             paid before its subscription is past due (14)
  TOLLGATE_ONLY              same as --only
  TOLLGATE_DEMO              same as --demo
  TOLLGATE_DEMO_NEW_KEY      same as --demo-new-key`;

  static override examples = [
    { description: 'Start on the embedded default', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'Use PostgreSQL and Redis',
      command:
        'DATABASE_URL=postgres://localhost:5432/tollgate REDIS_URL=redis://localhost:6379 <%= config.bin %> <%= command.id %>',
    },
    {
      description: 'Run only the gateway (one service per process)',
      command: '<%= config.bin %> <%= command.id %> --only gateway',
    },
    {
      description: 'First run: a demo API on a built-in echo upstream, a demo plan, team and key, and a curl to try',
      command: '<%= config.bin %> <%= command.id %> --demo',
    },
    {
      description: 'Pick free ports and print them as JSON',
      command: '<%= config.bin %> <%= command.id %> --api-port 0 --gateway-port 0 --json',
    },
  ];

  static override flags = {
    host: Flags.string({ description: 'Interface to listen on [env: TOLLGATE_HOST] [default: 127.0.0.1]' }),
    'api-port': Flags.string({
      description: 'Port of the control-plane API; 0 picks a free one [env: TOLLGATE_API_PORT] [default: 4000]',
    }),
    'gateway-port': Flags.string({
      description: 'Port of the gateway; 0 picks a free one [env: TOLLGATE_GATEWAY_PORT] [default: 8080]',
    }),
    'data-dir': Flags.string({
      description:
        'Folder of the embedded database, used when DATABASE_URL is unset [env: TOLLGATE_DATA_DIR] [default: .tollgate/data]',
    }),
    'log-level': Flags.string({
      description:
        'fatal, error, warn, info, debug, trace or silent; logs go to stderr [env: TOLLGATE_LOG_LEVEL] [default: info]',
    }),
    // A plain string parsed below: oclif's `multiple` flags do not split a comma list read from
    // the environment.
    only: Flags.string({
      description: `Run only these parts, comma-separated: ${components.join(', ')} [default: all three]`,
      env: 'TOLLGATE_ONLY',
    }),
    demo: Flags.boolean({
      description:
        'Also run a built-in echo upstream on 127.0.0.1 and set up the API, plan and team "demo" and, the first time, a key; prints a curl command that works (see docs/quickstart.md)',
      env: 'TOLLGATE_DEMO',
    }),
    'demo-new-key': Flags.boolean({
      description:
        'With --demo (implied): make a new demo key even though one exists (an earlier key cannot be shown again)',
      env: 'TOLLGATE_DEMO_NEW_KEY',
    }),
  };

  async run(): Promise<void> {
    const only = parseOnly(this.flags.only);
    const demo = this.flags.demo || this.flags['demo-new-key'] ? { newKey: this.flags['demo-new-key'] } : undefined;
    if (demo && only && !only.includes('gateway')) {
      throw new CliError('usage_error', '--demo (TOLLGATE_DEMO) needs the gateway in this process', {
        exitCode: exitCodes.usage,
        hint: 'add gateway to --only, or leave --only out',
      });
    }
    const env: Record<string, string | undefined> = { ...process.env };
    const fromFlag = new Map<string, string>();
    for (const [flag, variable] of Object.entries(settingFlags)) {
      const value = this.flags[flag as keyof typeof settingFlags];
      if (value !== undefined) {
        env[variable] = value;
        fromFlag.set(variable, `--${flag}`);
      }
    }

    // Imported here, not at the top: the services pull in PGlite, pg, Koa and more, which `--help`
    // and `--version` must not pay for.
    const { createLogger, isEmbedded, loadConfig, TollgateError, tollgateVersion } = await import('@tollgate/services');
    const { startTollgate } = await import('../runtime/start-tollgate.js');
    const { demoDocument, demoLines } = await import('../runtime/demo.js');

    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(env);
    } catch (error) {
      if (!(error instanceof TollgateError)) throw error;
      const variable = String(error.details?.variable ?? '');
      const flag = fromFlag.get(variable);
      const message = flag ? error.message.replace(variable, flag) : error.message;
      throw new CliError(error.code, message, { hint: error.hint, exitCode: exitCodes.usage });
    }

    const logger = createLogger({ level: config.logLevel });

    // Listen for signals before starting anything: a signal during start-up (waiting for PostgreSQL,
    // or as PID 1 in a container, where unhandled signals are ignored) stops Tollgate as soon as it
    // is up, and a second one stops it at once.
    let stopSignal: NodeJS.Signals | undefined;
    let firstSignalAt = 0;
    let onStopRequested: (() => void) | undefined;
    const startup = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      // Ctrl-C reaches the whole process group, and `npm start` forwards it as well: a repeat within
      // a second is the same keypress, not a request to stop at once.
      if (stopSignal && performance.now() - firstSignalAt < 1_000) return;
      if (stopSignal) {
        this.note(`Second ${signal}: stopping now without draining.`);
        process.exit(130);
      }
      stopSignal = signal;
      firstSignalAt = performance.now();
      if (onStopRequested) onStopRequested();
      else {
        this.note(`${signal} received during start-up: stopping.`);
        startup.abort();
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    const showSpinner = !this.jsonMode && process.stderr.isTTY === true;
    const { ux } = await import('@oclif/core');
    if (showSpinner) ux.action.start('Starting Tollgate', undefined, { stdout: false });
    let running: Awaited<ReturnType<typeof startTollgate>>;
    try {
      running = await startTollgate({
        config,
        logger,
        only,
        signal: startup.signal,
        ...(demo ? { demo } : {}),
      });
    } catch (error) {
      if (showSpinner) ux.action.stop('failed');
      // Stopping on request is a clean exit, not a failure.
      if (stopSignal && (error as { code?: unknown }).code === 'interrupted') {
        this.note('Stopped during start-up.');
        if (this.jsonMode) this.outJson({ status: 'stopped', signal: stopSignal });
        logger.flush();
        return;
      }
      throw error;
    }
    if (stopSignal) {
      // The signal came after the database was up but before the servers were: stop them now.
      if (showSpinner) ux.action.stop('stopping');
      await running.stop();
      this.note('Stopped during start-up.');
      if (this.jsonMode) this.outJson({ status: 'stopped', signal: stopSignal });
      return;
    }
    if (showSpinner) ux.action.stop('ready');

    const { database, counters, migrations } = running.backends;
    let operatorCredentials: string | undefined;
    if (running.operator && running.apiUrl) {
      // The first operator has no password: this machine's CLI gets its session, stored 0600.
      const { saveCredentials } = await import('../credentials.js');
      const { tokens, user } = running.operator;
      operatorCredentials = await saveCredentials(this.flags.profile, {
        api_url: running.apiUrl,
        user: { id: user.id, email: user.email },
        access_token: tokens.accessToken,
        access_token_expires_at: new Date(Date.now() + tokens.accessTokenExpiresIn * 1000).toISOString(),
        refresh_token: tokens.refreshToken,
        session_id: tokens.sessionId,
      });
    }
    const embedded = isEmbedded(config);
    if (this.jsonMode) {
      this.outJson({
        status: 'running',
        version: tollgateVersion,
        pid: process.pid,
        embedded,
        database: { driver: database.driver, location: database.location },
        counters: { driver: counters.driver, location: counters.location },
        api_url: running.apiUrl ?? null,
        gateway_url: running.gatewayUrl ?? null,
        worker: running.workerRunning,
        migrations: { applied: migrations.applied, already_applied: migrations.alreadyApplied },
        operator_created: running.operator
          ? { email: running.operator.user.email, credentials: operatorCredentials ?? null }
          : null,
        ...(running.demo && running.gatewayUrl ? { demo: demoDocument(running.demo, running.gatewayUrl) } : {}),
      });
    } else {
      const backends = embedded
        ? `the embedded default: PGlite in ${database.location} and in-process counters (no servers needed)`
        : `${database.driver === 'postgres' ? 'PostgreSQL' : 'PGlite'} at ${database.location} and ${counters.driver === 'memory' ? 'in-process counters' : `Redis at ${counters.location}`}`;
      this.out(`Tollgate ${tollgateVersion} is running on ${backends}.`);
      if (running.apiUrl) this.out(`  API      ${this.style('bold', running.apiUrl)}`);
      if (running.gatewayUrl) this.out(`  Gateway  ${this.style('bold', running.gatewayUrl)}`);
      if (running.workerRunning) this.out('  Worker   running');
      this.out(
        migrations.applied.length > 0
          ? `Applied ${migrations.applied.length} database migration(s): ${migrations.applied.join(', ')}.`
          : `Database schema up to date (${migrations.alreadyApplied} migrations).`,
      );
      if (running.operator) {
        this.out(
          `Created the operator account ${running.operator.user.email}; this CLI is signed in as it (profile ${this.flags.profile}, credentials in ${operatorCredentials}).`,
        );
      }
      if (running.demo && running.gatewayUrl) {
        for (const line of demoLines(running.demo, running.gatewayUrl)) this.note(line);
      }
      this.note(this.style('dim', 'Press Ctrl-C to stop.', 'stderr'));
    }

    await new Promise<void>((resolve) => {
      onStopRequested = () => {
        this.note(`${stopSignal} received: draining in-flight requests (up to ${config.shutdownTimeoutMs} ms)…`);
        const started = performance.now();
        running
          .stop()
          .catch((error: unknown) => logger.error({ err: error }, 'error while stopping'))
          .finally(() => {
            this.note(`Stopped in ${Math.round(performance.now() - started)} ms.`);
            logger.flush();
            resolve();
          });
      };
    });
  }
}
