import { type TeamPolicy, TollgateError } from '@tollgate/services';

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
  /** Forgets one team, or every team. */
  invalidate(teamId?: string): void;
}

/**
 * Plans change rarely and every call needs its team's: the gateway keeps them in memory for
 * `ttlMs` (so a plan change or a 402 flag reaches the gateway within that time, or at once when
 * invalidated), loads each team once however many calls wait (single flight), and holds at most
 * `maxEntries` teams (the oldest go first). While the database cannot be read, a team already
 * known keeps its last policy; an unknown one gets 503 `database_unreachable`.
 */
export function createTeamPolicyCache(options: {
  load: (teamId: string) => Promise<TeamPolicy | undefined>;
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}): TeamPolicyCache {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const loading = new Map<string, Promise<TeamPolicy | undefined>>();
  return {
    get(teamId) {
      const entry = entries.get(teamId);
      if (entry && entry.expiresAt > now()) return entry.policy;
      let pending = loading.get(teamId);
      if (!pending) {
        pending = options
          .load(teamId)
          .then((policy) => {
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
          .finally(() => loading.delete(teamId));
        loading.set(teamId, pending);
      }
      return pending;
    },
    invalidate(teamId) {
      if (teamId === undefined) entries.clear();
      else entries.delete(teamId);
    },
  };
}
