import type { ApiDefinition, Logger } from '@tollgate/services';
import { RoutingTable } from './routing-table.js';

/** Where the gateway reads its routing: the current snapshot, swapped atomically on reload. */
export interface RoutingSource {
  current(): RoutingTable;
  /** Called with each new snapshot (e.g. to drop connection pools no API uses any more). */
  onChange(listener: (table: RoutingTable) => void): void;
  close(): Promise<void>;
}

/** A fixed snapshot (tests, and a gateway without a control plane). */
export function staticRouting(apis: readonly ApiDefinition[]): RoutingSource {
  const table = new RoutingTable(apis);
  return { current: () => table, onChange: () => {}, close: async () => {} };
}

export interface LiveRoutingOptions {
  /** Reads the configuration: its version and the APIs. */
  load: () => Promise<{ version: number; apis: ApiDefinition[] }>;
  /** Announces new configuration versions (Redis pub/sub, or in process); returns an unsubscribe. */
  subscribe?: (listener: (version: number) => void) => () => void;
  logger: Logger;
  /** Safety net for a missed announcement: the version is checked this often. */
  pollMs?: number;
}

/**
 * The routing snapshot of a running gateway. It loads once at start (a failure there is fatal),
 * reloads when a newer version is announced or found by the periodic check, and keeps serving the
 * last good snapshot while the database cannot be read.
 */
export async function liveRouting(options: LiveRoutingOptions): Promise<RoutingSource> {
  const first = await options.load();
  let table = new RoutingTable(first.apis, first.version);
  const listeners: ((table: RoutingTable) => void)[] = [];
  let loading: Promise<void> | undefined;
  let wanted = first.version;

  const reload = (): Promise<void> => {
    loading ??= (async () => {
      try {
        const loaded = await options.load();
        if (loaded.version !== table.version) {
          table = new RoutingTable(loaded.apis, loaded.version);
          for (const listener of listeners) listener(table);
          options.logger.info({ version: loaded.version, apis: loaded.apis.length }, 'routing configuration reloaded');
        }
      } catch (error) {
        options.logger.warn({ err: error }, 'could not reload the routing configuration; serving the last one');
      } finally {
        loading = undefined;
      }
      // A newer version announced while this load ran.
      if (wanted > table.version) setTimeout(() => void reload(), 100).unref();
    })();
    return loading;
  };

  const unsubscribe = options.subscribe?.((version) => {
    if (version <= table.version) return;
    wanted = Math.max(wanted, version);
    void reload();
  });
  const timer = setInterval(() => void reload(), options.pollMs ?? 30_000);
  timer.unref();
  return {
    current: () => table,
    onChange: (listener) => listeners.push(listener),
    close: async () => {
      clearInterval(timer);
      unsubscribe?.();
      await loading;
    },
  };
}
