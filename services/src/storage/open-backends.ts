import { type ConfigBus, configChannelFor, openConfigBus } from '../apis/config-bus.js';
import type { TollgateConfig } from '../config/config.js';
import type { CounterStore } from '../counters/counter-store.js';
import { openCounterStore } from '../counters/open-counter-store.js';
import { openRefreshTokenStore } from '../identity/open-refresh-token-store.js';
import type { RefreshTokenStore } from '../identity/refresh-token-store.js';
import { type KeyEvents, keyEventsChannelFor, openKeyEvents } from '../keys/key-events.js';
import type { Logger } from '../logging/logger.js';
import { createMailer, type Mailer } from '../mail/mailer.js';
import {
  openTeamPolicyEvents,
  type TeamPolicyEvents,
  teamPolicyEventsChannelFor,
} from '../plans/team-policy-events.js';
import { type MasterKeyring, resolveMasterKeyring } from '../secrets/master-keyring.js';
import { createSmsSender } from '../sms/create-sms-sender.js';
import type { SmsSender } from '../sms/sms-sender.js';
import type { Database } from './database.js';
import { type MigrationReport, runMigrations } from './migrate.js';
import { openDatabase } from './open-database.js';

export interface Backends {
  database: Database;
  counters: CounterStore;
  /** Refresh-token hashes and their rotation: Redis when configured, else the database. */
  refreshTokens: RefreshTokenStore;
  /** Announces routing configuration versions to gateways: Redis pub/sub when configured, else in process. */
  configBus: ConfigBus;
  migrations: MigrationReport;
  /** Seals secrets at rest and derives the token-signing key. */
  keyring: MasterKeyring;
  /** Outgoing mail (SMTP, or .eml files for the embedded default). */
  mailer: Mailer;
  /** Outgoing text messages (Twilio, or .txt files for the embedded default). */
  sms: SmsSender;
  /** API-key revocations and rotations, control plane to gateways: Redis pub/sub, else in process. */
  keyEvents: KeyEvents;
  /** Team plan and payment-state changes, control plane to gateways: Redis pub/sub, else in process. */
  teamPolicyEvents: TeamPolicyEvents;
  close(): Promise<void>;
}

/** Opens the database, brings its schema up to date, and opens the counter and refresh-token stores. */
export async function openBackends(
  config: TollgateConfig,
  options: { logger: Logger; signal?: AbortSignal },
): Promise<Backends> {
  const { keyring } = await resolveMasterKeyring({
    ...(config.masterKey === undefined ? {} : { current: config.masterKey }),
    previous: config.previousMasterKeys,
    dataDir: config.dataDir,
    logger: options.logger,
  });
  const database = await openDatabase(config.database, options);
  let counters: CounterStore | undefined;
  let refreshTokens: RefreshTokenStore | undefined;
  let configBus: ConfigBus | undefined;
  try {
    const migrations = await runMigrations(database, options);
    // In parallel: with Redis down, each waits for its connection before going on without it.
    // Every key and channel goes under TOLLGATE_REDIS_PREFIX, so installations sharing a Redis stay apart.
    const keyPrefix = config.redisPrefix;
    const [countersOpening, tokensOpening, busOpening] = await Promise.allSettled([
      openCounterStore(config.counters, { logger: options.logger, keyPrefix }),
      openRefreshTokenStore(config.counters, { database, logger: options.logger, keyPrefix }),
      openConfigBus(config.counters, { logger: options.logger, channel: configChannelFor(keyPrefix) }),
    ]);
    if (countersOpening.status === 'fulfilled') counters = countersOpening.value;
    if (tokensOpening.status === 'fulfilled') refreshTokens = tokensOpening.value;
    if (busOpening.status === 'fulfilled') configBus = busOpening.value;
    if (countersOpening.status === 'rejected') throw countersOpening.reason;
    if (tokensOpening.status === 'rejected') throw tokensOpening.reason;
    if (busOpening.status === 'rejected') throw busOpening.reason;
    const opened = countersOpening.value;
    const openedTokens = tokensOpening.value;
    const openedBus = busOpening.value;
    const mailer = createMailer({
      ...(config.mail.smtpUrl === undefined ? {} : { smtpUrl: config.mail.smtpUrl }),
      from: config.mail.from,
      mailDir: config.mail.dir,
      logger: options.logger,
    });
    const sms = createSmsSender({ twilio: config.sms.twilio, smsDir: config.sms.dir, logger: options.logger });
    const keyEvents = await openKeyEvents(config.counters, {
      logger: options.logger,
      channel: keyEventsChannelFor(keyPrefix),
    });
    const teamPolicyEvents = await openTeamPolicyEvents(config.counters, {
      logger: options.logger,
      channel: teamPolicyEventsChannelFor(keyPrefix),
    }).catch(async (error: unknown) => {
      await keyEvents.close();
      throw error;
    });
    return {
      database,
      counters: opened,
      refreshTokens: openedTokens,
      configBus: openedBus,
      migrations,
      keyring,
      mailer,
      sms,
      keyEvents,
      teamPolicyEvents,
      async close() {
        await Promise.allSettled([
          opened.close(),
          openedTokens.close(),
          openedBus.close(),
          database.close(),
          mailer.close(),
          sms.close(),
          keyEvents.close(),
          teamPolicyEvents.close(),
        ]);
      },
    };
  } catch (error) {
    await counters?.close().catch(() => undefined);
    await refreshTokens?.close().catch(() => undefined);
    await configBus?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
}
