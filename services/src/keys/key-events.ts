import { type CounterConfig, defaultRedisPrefix } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { openRedisClient } from '../storage/open-redis-client.js';
import { withTimeout } from '../timing/with-timeout.js';

/**
 * What gateways hear about API keys: a key changed (revoked or rotated) and must be dropped from
 * every cache, or `resync` when the subscription was down for a while and any announcement may have
 * been missed, so the whole cache goes.
 */
export type KeyEvent = { type: 'invalidate'; lookupId: string } | { type: 'resync' };

/**
 * Announces key changes from the control plane to the gateways: Redis pub/sub on `<prefix>keys`
 * when Redis is configured, an in-process event otherwise (embedded: API and gateway share a process).
 */
export interface KeyEvents {
  readonly driver: 'memory' | 'redis';
  /** Resolves once Redis accepted the message (or at once in process). */
  publishInvalidation(lookupId: string): Promise<void>;
  /** Returns an unsubscribe. */
  subscribe(listener: (event: KeyEvent) => void): () => void;
  close(): Promise<void>;
}

/**
 * The channel under a prefix (`TOLLGATE_REDIS_PREFIX`): `<prefix>keys`, the prefix in the name itself
 * since Redis does not prefix channels.
 */
export function keyEventsChannelFor(redisPrefix: string): string {
  return `${redisPrefix}keys`;
}

/** The channel with the default prefix. */
export const keyEventsChannel = keyEventsChannelFor(defaultRedisPrefix);

function listenerSet(logger: Logger | undefined) {
  const listeners = new Set<(event: KeyEvent) => void>();
  return {
    add(listener: (event: KeyEvent) => void) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    emit(event: KeyEvent) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          logger?.error({ err: error }, 'a key-event listener failed');
        }
      }
    },
  };
}

export function createMemoryKeyEvents(options: { logger?: Logger } = {}): KeyEvents {
  const listeners = listenerSet(options.logger);
  return {
    driver: 'memory',
    async publishInvalidation(lookupId) {
      listeners.emit({ type: 'invalidate', lookupId });
    },
    subscribe: (listener) => listeners.add(listener),
    async close() {},
  };
}

/**
 * Two connections: a subscribed Redis connection cannot publish. The subscriber resubscribes on
 * every reconnect (ioredis does too; subscribing again is harmless) and then emits `resync`, since
 * messages published while it was away are lost: pub/sub is fire and forget.
 */
export async function createRedisKeyEvents(
  config: Extract<CounterConfig, { driver: 'redis' | 'redis-cluster' }>,
  options: { logger: Logger; channel?: string; connectWaitMs?: number },
): Promise<KeyEvents> {
  const channel = options.channel ?? keyEventsChannel;
  const listeners = listenerSet(options.logger);
  const connectWaitMs = options.connectWaitMs ?? 5_000;
  const [publisher, subscriber] = await Promise.all([
    openRedisClient(config, { logger: options.logger, purpose: 'key events (publish)', connectWaitMs }),
    openRedisClient(config, { logger: options.logger, purpose: 'key events (subscribe)', connectWaitMs }),
  ]);
  // Every subscription after the one made here may follow a gap (a reconnect, or Redis down at start
  // while gateways already cached keys).
  let starting = true;
  const subscribe = async () => {
    try {
      await subscriber.client.subscribe(channel);
      if (!starting) listeners.emit({ type: 'resync' });
    } catch (error) {
      options.logger.warn({ err: error, channel }, 'could not subscribe to key events; retrying on reconnect');
    }
  };
  subscriber.client.on('ready', () => void subscribe());
  subscriber.client.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    if (message.startsWith('invalidate:')) listeners.emit({ type: 'invalidate', lookupId: message.slice(11) });
  });
  if (subscriber.client.status === 'ready') await subscribe();
  starting = false;
  return {
    driver: 'redis',
    async publishInvalidation(lookupId) {
      await withTimeout(publisher.client.publish(channel, `invalidate:${lookupId}`), 2_000, 'key events PUBLISH');
    },
    subscribe: (listener) => listeners.add(listener),
    async close() {
      subscriber.client.removeAllListeners('message');
      await Promise.allSettled([publisher.close(), subscriber.close()]);
    },
  };
}

/** Redis pub/sub when the counters use Redis, else in process. */
export function openKeyEvents(
  config: CounterConfig,
  options: { logger: Logger; channel?: string },
): Promise<KeyEvents> {
  if (config.driver === 'memory') return Promise.resolve(createMemoryKeyEvents(options));
  return createRedisKeyEvents(config, options);
}
