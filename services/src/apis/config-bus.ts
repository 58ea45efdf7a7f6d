import { EventEmitter } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import { type CounterConfig, defaultRedisPrefix } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { openRedisClient, type RedisConfig } from '../storage/open-redis-client.js';
import { withTimeout } from '../timing/with-timeout.js';

/**
 * How the control plane tells gateways that the routing configuration changed (ARCHITECTURE.md,
 * "Config propagation"). The version is a hint: a listener reloads from the database, which says
 * which version it loaded (`loadRoutingConfig`), and ignores a version it already has.
 *
 * Delivery is at most once per subscriber (a gateway cut off from Redis while a change is published
 * misses the message), so the Redis bus also replays the newest version it knows when its subscriber
 * connection comes back, and gateways should still poll `currentConfigVersion` now and then.
 */
export interface ConfigBus {
  /** Tells every subscriber, in every process sharing the bus, that `version` exists. */
  publish(version: number): Promise<void>;
  /** Calls `listener` with each version published; answers the function that stops it. */
  subscribe(listener: (version: number) => void): () => void;
  close(): Promise<void>;
}

/**
 * The Redis channel under a prefix (`TOLLGATE_REDIS_PREFIX`): `<prefix>config`. The newest version
 * is also kept under the key `<channel>:version`. The prefix goes into the name itself since Redis
 * does not prefix channels (ioredis' `keyPrefix` applies to keys only).
 */
export function configChannelFor(redisPrefix: string): string {
  return `${redisPrefix}config`;
}

/** The channel with the default prefix. */
export const configChannel = configChannelFor(defaultRedisPrefix);

function deliver(listener: (version: number) => void, version: number, logger: Logger | undefined): void {
  try {
    listener(version);
  } catch (error) {
    logger?.error({ err: error, version }, 'a config-version listener failed');
  }
}

/** The embedded default: subscribers in this process only. */
export function createInProcessConfigBus(options: { logger?: Logger } = {}): ConfigBus {
  const emitter = new EventEmitter();
  // One listener per gateway app and test; no leak to warn about.
  emitter.setMaxListeners(0);
  return {
    async publish(version) {
      emitter.emit('version', version);
    },
    subscribe(listener) {
      const wrapped = (version: number) => deliver(listener, version, options.logger);
      emitter.on('version', wrapped);
      return () => emitter.off('version', wrapped);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/**
 * KEYS: the version key. ARGV: version, channel. Keeps the highest version seen (two control-plane
 * processes may publish out of order) and publishes this one. In Redis Cluster a PUBLISH reaches
 * subscribers on every node, so the script may run on whichever node holds the key.
 */
const publishScript = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('PUBLISH', ARGV[2], ARGV[1])`;

type BusClient = (Redis | Cluster) & {
  tollgateConfigPublish(key: string, version: string, channel: string): Promise<number>;
};

export interface RedisConfigBusOptions {
  logger: Logger;
  /** Another channel than `tollgate:config`, e.g. `configChannelFor(config.redisPrefix)`. */
  channel?: string;
  /** Put before the version key (not the channel: Redis does not prefix channels). */
  keyPrefix?: string;
  /** How long start-up waits for the first connection before going on without it. */
  connectWaitMs?: number;
  /** How long a publish waits for Redis before failing. */
  commandTimeoutMs?: number;
}

/**
 * The bus over Redis pub/sub (Redis or Redis Cluster). Two connections: a subscribing connection can
 * run nothing but (un)subscribe commands, so publishing has its own.
 */
export async function openRedisConfigBus(config: RedisConfig, options: RedisConfigBusOptions): Promise<ConfigBus> {
  const channel = options.channel ?? configChannel;
  const versionKey = `${channel}:version`;
  const commandTimeoutMs = options.commandTimeoutMs ?? 2_000;
  const { logger } = options;
  const common = {
    logger,
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...(options.connectWaitMs === undefined ? {} : { connectWaitMs: options.connectWaitMs }),
  };
  const [publisherOpening, subscriberOpening] = await Promise.allSettled([
    openRedisClient(config, { ...common, purpose: 'config bus' }),
    openRedisClient(config, { ...common, purpose: 'config bus subscriber' }),
  ]);
  if (publisherOpening.status === 'rejected' || subscriberOpening.status === 'rejected') {
    if (publisherOpening.status === 'fulfilled') await publisherOpening.value.close();
    if (subscriberOpening.status === 'fulfilled') await subscriberOpening.value.close();
    throw publisherOpening.status === 'rejected'
      ? publisherOpening.reason
      : (subscriberOpening as PromiseRejectedResult).reason;
  }
  const publisher = publisherOpening.value;
  const subscriber = subscriberOpening.value;
  const client = publisher.client as BusClient;
  client.defineCommand('tollgateConfigPublish', { numberOfKeys: 1, lua: publishScript });

  const listeners = new Set<(version: number) => void>();
  let subscribed = false;
  let closed = false;

  const fanOut = (version: number) => {
    for (const listener of [...listeners]) deliver(listener, version, logger);
  };

  const subscribeChannel = () => {
    subscribed = true;
    subscriber.client.subscribe(channel).catch((error: unknown) => {
      // Redis is away; the `ready` handler subscribes again when it is back.
      logger.warn({ err: error, channel }, 'could not subscribe to config changes yet');
    });
  };

  // Read through the publishing connection, which may come back after the subscriber: wait for it.
  let replayPending = false;
  const replayNewest = () => {
    if (replayPending) return;
    replayPending = true;
    const read = () => {
      replayPending = false;
      if (closed || listeners.size === 0) return;
      client
        .get(versionKey)
        .then((value) => {
          const version = Number(value);
          if (value !== null && Number.isSafeInteger(version)) fanOut(version);
        })
        .catch((error: unknown) => logger.warn({ err: error }, 'could not read the newest config version'));
    };
    if (client.status === 'ready') read();
    else client.once('ready', read);
  };

  subscriber.client.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    const version = Number(message);
    if (Number.isSafeInteger(version) && version >= 0) fanOut(version);
    else logger.warn({ channel, message: message.slice(0, 100) }, 'ignored a malformed config version');
  });

  // Emitted when the subscriber connects after being down (not at start: it is ready by then).
  subscriber.client.on('ready', () => {
    if (listeners.size === 0 || closed) return;
    // ioredis resubscribes by itself after a reconnect, but not to a channel whose SUBSCRIBE failed
    // while Redis was away; SUBSCRIBE twice is harmless.
    subscribeChannel();
    // Whatever was published while this connection was down is lost: replay the newest version.
    replayNewest();
  });

  return {
    async publish(version) {
      await withTimeout(
        client.tollgateConfigPublish(versionKey, String(version), channel),
        commandTimeoutMs,
        'config bus PUBLISH',
      );
    },
    subscribe(listener) {
      const wrapped = (version: number) => listener(version);
      listeners.add(wrapped);
      if (!subscribed && !closed) subscribeChannel();
      return () => {
        listeners.delete(wrapped);
        if (listeners.size === 0 && subscribed && !closed) {
          subscribed = false;
          subscriber.client.unsubscribe(channel).catch(() => undefined);
        }
      };
    },
    async close() {
      closed = true;
      listeners.clear();
      await Promise.allSettled([publisher.close(), subscriber.close()]);
    },
  };
}

/** The bus for this configuration: Redis (or Redis Cluster) when configured, else in process. */
export async function openConfigBus(
  config: CounterConfig,
  options: Omit<RedisConfigBusOptions, 'logger'> & { logger: Logger },
): Promise<ConfigBus> {
  if (config.driver === 'memory') return createInProcessConfigBus({ logger: options.logger });
  return openRedisConfigBus(config, options);
}
