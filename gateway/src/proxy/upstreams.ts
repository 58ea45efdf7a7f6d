import { Pool } from 'undici';

/** Passive health: after this many failures in a row a target is skipped... */
export const failuresBeforeCooldown = 3;
/** ...for this long, then tried again. */
export const cooldownMs = 10_000;

export interface UpstreamTarget {
  /** The base URL as configured, e.g. `https://api.example.com/v2`. */
  url: string;
  origin: string;
  /** Base path joined in front of the request's path ('' for none, never ending in `/`). */
  basePath: string;
  pool: Pool;
  consecutiveFailures: number;
  skipUntil: number;
}

/** Keep-alive connections per target and process; undici queues requests beyond them. */
const connectionsPerTarget = 128;

function createTarget(url: string): UpstreamTarget {
  const parsed = new URL(url);
  return {
    url,
    origin: parsed.origin,
    basePath: parsed.pathname.replace(/\/+$/, ''),
    pool: new Pool(parsed.origin, {
      connections: connectionsPerTarget,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      pipelining: 1,
    }),
    consecutiveFailures: 0,
    skipUntil: 0,
  };
}

/**
 * The targets of one API, tried round-robin. A target that failed (could not connect, reset, timed
 * out) `failuresBeforeCooldown` times in a row is skipped for `cooldownMs`; one success resets it.
 * When every target is cooling down, the one whose cool-down ends first is tried anyway: better a
 * likely failure than a certain one.
 */
export class UpstreamSet {
  readonly targets: UpstreamTarget[];
  private next = 0;

  constructor(targets: UpstreamTarget[]) {
    this.targets = targets;
  }

  pick(now = Date.now()): UpstreamTarget {
    const count = this.targets.length;
    for (let tried = 0; tried < count; tried++) {
      const target = this.targets[this.next % count] as UpstreamTarget;
      this.next = (this.next + 1) % count;
      if (target.skipUntil <= now) return target;
    }
    let soonest = this.targets[0] as UpstreamTarget;
    for (const target of this.targets) if (target.skipUntil < soonest.skipUntil) soonest = target;
    return soonest;
  }

  succeeded(target: UpstreamTarget): void {
    target.consecutiveFailures = 0;
    target.skipUntil = 0;
  }

  failed(target: UpstreamTarget, now = Date.now()): void {
    target.consecutiveFailures++;
    if (target.consecutiveFailures >= failuresBeforeCooldown) target.skipUntil = now + cooldownMs;
  }
}

/**
 * Connection pools for every upstream the routing snapshot names, shared between APIs that use the
 * same origin, kept across configuration reloads (so a reload does not drop warm connections), and
 * closed when no API uses them any more.
 */
export class UpstreamRegistry {
  private readonly targets = new Map<string, UpstreamTarget>();
  private readonly sets = new Map<string, UpstreamSet>();

  /** Per API definition (replaced, never changed, on reload): no key string built per call. */
  private readonly byDefinition = new WeakMap<object, UpstreamSet>();

  /** The set of an API definition's upstreams, remembered for that definition. */
  setForApi(api: { id: string; upstreams: readonly string[] }): UpstreamSet {
    let set = this.byDefinition.get(api);
    if (!set) {
      set = this.setFor(api.id, api.upstreams);
      this.byDefinition.set(api, set);
    }
    return set;
  }

  /** The set for an API's upstream list; the same object while the list does not change. */
  setFor(apiId: string, urls: readonly string[]): UpstreamSet {
    const key = `${apiId}\n${urls.join('\n')}`;
    let set = this.sets.get(key);
    if (!set) {
      set = new UpstreamSet(urls.map((url) => this.target(url)));
      this.sets.set(key, set);
    }
    return set;
  }

  private target(url: string): UpstreamTarget {
    let target = this.targets.get(url);
    if (!target) {
      target = createTarget(url);
      this.targets.set(url, target);
    }
    return target;
  }

  /** Drops the sets and pools the given API upstream lists no longer use. */
  retain(apis: readonly { id: string; upstreams: readonly string[] }[]): void {
    const liveSets = new Set(apis.map((api) => `${api.id}\n${api.upstreams.join('\n')}`));
    for (const key of this.sets.keys()) if (!liveSets.has(key)) this.sets.delete(key);
    const liveUrls = new Set(apis.flatMap((api) => api.upstreams));
    for (const [url, target] of this.targets) {
      if (!liveUrls.has(url)) {
        this.targets.delete(url);
        void target.pool.close().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.targets.values()].map((target) => target.pool.destroy().catch(() => {}));
    this.targets.clear();
    this.sets.clear();
    await Promise.all(pools);
  }
}
