import { type TeamPolicy, type TeamPolicyEvents, TollgateError } from '@tollgate/services';

interface Entry {
  policy: TeamPolicy | undefined;
  expiresAt: number;
}

export interface TeamPolicyCache {
  /**
   * The team's policy: from memory while fresh (answered without a promise), else loaded once
   * however many calls wait for it.
   */
  get(teamId: string): TeamPolicy | undefined | Promise<TeamPolicy | undefined>;
  /**
   * Forgets one team, or every team. A load already under way is not kept either: it may have read
   * the state from before the change that caused the invalidation.
   */
  invalidate(teamId?: string): void;
  /** Stops listening to `events`. */
  close(): void;
}

/**
 * Plans change rarely and every call needs its team's: the gateway keeps them in memory for
 * `ttlMs` (so a plan change or a 402 flag reaches the gateway within that time, or at once when
 * invalidated), loads each team once however many calls wait (single flight), and holds at most
 * `maxEntries` teams (the oldest go first). While the database cannot be read, a team already
 * known keeps its last policy; an unknown one gets 503 `database_unreachable`. With `events` (the
 * control plane's TeamPolicyEvents: Redis pub/sub, or in process when embedded) a team is forgotten
 * as soon as its subscription changes, so paying for an unpaid subscription lifts the 402 within
 * about a second; a `resync` (the subscription had a gap) forgets every team.
 */
export function createTeamPolicyCache(options: {
  load: (teamId: string) => Promise<TeamPolicy | undefined>;
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
  events?: Pick<TeamPolicyEvents, 'subscribe'>;
}): TeamPolicyCache {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const loading = new Map<string, Promise<TeamPolicy | undefined>>();
  const invalidate = (teamId?: string) => {
    if (teamId === undefined) {
      entries.clear();
      loading.clear();
    } else {
      entries.delete(teamId);
      loading.delete(teamId);
    }
  };
  const unsubscribe = options.events?.subscribe((event) =>
    invalidate(event.type === 'invalidate' ? event.teamId : undefined),
  );
  return {
    get(teamId) {
      const entry = entries.get(teamId);
      if (entry && entry.expiresAt > now()) return entry.policy;
      let pending = loading.get(teamId);
      if (!pending) {
        pending = options
          .load(teamId)
          .then((policy) => {
            // Invalidated while loading: this answer may predate the change; the next call loads again.
            if (loading.get(teamId) !== pending) return policy;
            entries.delete(teamId);
            if (entries.size >= maxEntries) {
              const oldest = entries.keys().next().value;
              if (oldest !== undefined) entries.delete(oldest);
            }
            entries.set(teamId, { policy, expiresAt: now() + ttlMs });
            return policy;
          })
          .catch((error: unknown) => {
            // The database cannot be read: keep serving what is known, however old.
            if (entry) return entry.policy;
            throw new TollgateError('database_unreachable', "the team's plan cannot be read right now", {
              cause: error,
            });
          })
          .finally(() => {
            if (loading.get(teamId) === pending) loading.delete(teamId);
          });
        loading.set(teamId, pending);
      }
      return pending;
    },
    invalidate,
    close() {
      unsubscribe?.();
    },
  };
}
