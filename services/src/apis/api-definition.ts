/**
 * An API the gateway serves, as the routing snapshot carries it: what the control plane stores in
 * the `apis` table (apis.ts) and what every gateway reloads when the configuration version moves
 * (config-bus.ts).
 */
export interface ApiDefinition {
  id: string;
  /** Lower-case letters, digits and dashes; the gateway serves the API at `/<slug>/...`. */
  slug: string;
  name: string;
  /** Host names (lower case, no port) routed to this API whatever the path; may be empty. */
  hosts: string[];
  /**
   * Another path prefix routed to this API besides `/<slug>` (e.g. `/weather/v1`), starting with
   * `/` and without a trailing `/`; null for none. The matched prefix is stripped before proxying.
   */
  pathPrefix: string | null;
  /** Upstream base URLs (http or https, optionally with a base path), tried round-robin. */
  upstreams: string[];
  /** How long the upstream may take to answer (headers) and between body chunks, in milliseconds. */
  timeoutMs: number;
  /** When the counter store (Redis) is unreachable: serve and count in process, or answer 503. */
  failurePolicy: 'fail-open' | 'fail-closed';
  /** Metrics the gateway meters for this API: `calls`, `bandwidth` (request + response bytes). */
  meteredMetrics: ('calls' | 'bandwidth')[];
  /** Ordered plugins with their configuration; request hooks run in this order. */
  plugins: { name: string; config: Record<string, unknown> }[];
  updatedAt: Date;
}
