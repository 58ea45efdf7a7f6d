import type { CounterConfig } from '../config/config.js';
import { createMemoryKeyEvents, type KeyEvents, openKeyEvents } from '../keys/key-events.js';
import type { Logger } from '../logging/logger.js';

/**
 * What gateways hear about team policies (team-policy.ts): one team's plan or payment state changed
 * and its cached policy must go, or `resync` after a gap in the subscription, so every team's goes.
 */
export type TeamPolicyEvent = { type: 'invalidate'; teamId: string } | { type: 'resync' };

/**
 * Announces team-policy changes (a subscription started, changed plan, went unpaid or was paid) from
 * the control plane to the gateways, so "paying restores access" takes a second rather than the
 * cache's TTL. The transport is the one key revocations use (key-events.ts): Redis pub/sub on
 * `<prefix>team-policies` when Redis is configured, an in-process event otherwise.
 */
export interface TeamPolicyEvents {
  readonly driver: 'memory' | 'redis';
  /** Publish after the change committed: a gateway reloads at once and must read the new state. */
  publishInvalidation(teamId: string): Promise<void>;
  /** Returns an unsubscribe. */
  subscribe(listener: (event: TeamPolicyEvent) => void): () => void;
  close(): Promise<void>;
}

export function teamPolicyEventsChannelFor(redisPrefix: string): string {
  return `${redisPrefix}team-policies`;
}

function fromKeyEvents(bus: KeyEvents): TeamPolicyEvents {
  return {
    driver: bus.driver,
    publishInvalidation: (teamId) => bus.publishInvalidation(teamId),
    subscribe: (listener) =>
      bus.subscribe((event) =>
        listener(event.type === 'invalidate' ? { type: 'invalidate', teamId: event.lookupId } : event),
      ),
    close: () => bus.close(),
  };
}

/** In process: for the embedded default and for tests. */
export function createMemoryTeamPolicyEvents(options: { logger?: Logger } = {}): TeamPolicyEvents {
  return fromKeyEvents(createMemoryKeyEvents(options));
}

/** Redis pub/sub when the counters use Redis, else in process. */
export async function openTeamPolicyEvents(
  config: CounterConfig,
  options: { logger: Logger; channel: string },
): Promise<TeamPolicyEvents> {
  return fromKeyEvents(await openKeyEvents(config, options));
}
