/**
 * Where gateways count metered calls between flushes (docs/gateway.md, "Metering"): Redis when
 * configured, shared by every gateway and the flusher; process memory in the embedded default.
 *
 * Gateways add to one **open batch**. The flusher **seals** it (moves it, atomically, to a batch of
 * its own named by a batch id, while gateways go on counting into a new open batch), writes it to
 * PostgreSQL together with its id, then **removes** it. A sealed batch that is still there after a
 * crash is found by `sealedBatches()` and finished by the next flush.
 */
export interface UsageCounterStore {
  readonly driver: 'redis' | 'redis-cluster' | 'memory';
  /**
   * Adds the cells to the open batch, all or nothing. `deliveryId` names this delivery: a retry with
   * the same id after an error whose outcome is unknown (the reply was lost) is not counted twice.
   */
  add(cells: readonly UsageCell[], deliveryId: string): Promise<void>;
  /** Moves the open batch to sealed batch `batchId`, atomically. False when nothing was open. */
  seal(batchId: string): Promise<boolean>;
  /** Ids of sealed batches not removed yet, oldest first. */
  sealedBatches(): Promise<string[]>;
  /** The cells of a sealed batch; empty when it is gone. */
  readSealed(batchId: string): Promise<UsageCell[]>;
  /** Forgets a sealed batch (after it was written to the database). */
  removeSealed(batchId: string): Promise<void>;
  close(): Promise<void>;
}

/** The counts of one (minute, team, key, API): what the rollup tables hold per row. */
export interface UsageCell {
  /** Start of the minute, in milliseconds since the epoch (UTC). */
  minute: number;
  teamId: string;
  keyId: string;
  apiId: string;
  counts: UsageCounts;
}

export interface UsageCounts {
  calls: number;
  requestBytes: number;
  responseBytes: number;
  /** Sum of the calls' latencies, in microseconds. */
  latencyUsSum: number;
  /** The slowest call's latency, in microseconds. */
  latencyUsMax: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  /** Calls admitted beyond the plan's quota. */
  overageCalls: number;
}

export const usageCountNames = [
  'calls',
  'requestBytes',
  'responseBytes',
  'latencyUsSum',
  'latencyUsMax',
  'status2xx',
  'status3xx',
  'status4xx',
  'status5xx',
  'overageCalls',
] as const satisfies readonly (keyof UsageCounts)[];

/** Counts that keep the largest value instead of adding up. */
export const maximumCounts: ReadonlySet<keyof UsageCounts> = new Set(['latencyUsMax']);

export function emptyCounts(): UsageCounts {
  return {
    calls: 0,
    requestBytes: 0,
    responseBytes: 0,
    latencyUsSum: 0,
    latencyUsMax: 0,
    status2xx: 0,
    status3xx: 0,
    status4xx: 0,
    status5xx: 0,
    overageCalls: 0,
  };
}

/** Adds `from` into `into` (maxima take the larger). */
export function addCounts(into: UsageCounts, from: UsageCounts): void {
  for (const name of usageCountNames) {
    into[name] = maximumCounts.has(name) ? Math.max(into[name], from[name]) : into[name] + from[name];
  }
}

const separator = '|';

/** The part of a counter's name that says which cell it belongs to: `<minute>|<team>|<key>|<api>`. */
export function cellKey(cell: Pick<UsageCell, 'minute' | 'teamId' | 'keyId' | 'apiId'>): string {
  // Ids are uuids or short slugs; escaping keeps a stray `|` from shifting the fields anyway.
  return [cell.minute, cell.teamId, cell.keyId, cell.apiId].map((part) => encodeURIComponent(part)).join(separator);
}

/** Counter names of a batch in the store: `<cell key>|<count name>`. */
export function counterField(cell: UsageCell, name: keyof UsageCounts): string {
  return `${cellKey(cell)}${separator}${name}`;
}

/**
 * Turns a batch's counters back into cells. A counter whose name cannot be read is skipped and
 * reported, rather than holding up every batch after it.
 */
export function cellsFromCounters(counters: Iterable<[string, number]>): { cells: UsageCell[]; unreadable: string[] } {
  const cells = new Map<string, UsageCell>();
  const unreadable: string[] = [];
  const names = new Set<string>(usageCountNames);
  for (const [field, value] of counters) {
    const parts = field.split(separator);
    const [minuteText, team, key, api, name] = parts;
    const minute = Number(minuteText);
    if (
      parts.length !== 5 ||
      team === undefined ||
      key === undefined ||
      api === undefined ||
      name === undefined ||
      !names.has(name) ||
      !Number.isSafeInteger(minute) ||
      !Number.isSafeInteger(value)
    ) {
      unreadable.push(field);
      continue;
    }
    const id = parts.slice(0, 4).join(separator);
    let cell = cells.get(id);
    if (!cell) {
      cell = {
        minute,
        teamId: decodeURIComponent(team),
        keyId: decodeURIComponent(key),
        apiId: decodeURIComponent(api),
        counts: emptyCounts(),
      };
      cells.set(id, cell);
    }
    cell.counts[name as keyof UsageCounts] = value;
  }
  return { cells: [...cells.values()], unreadable };
}
