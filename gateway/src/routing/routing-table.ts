import type { ApiDefinition } from '@tollgate/services';

export interface RouteMatch {
  api: ApiDefinition;
  /** The path to send upstream: the request path without the matched prefix (at least `/`). */
  upstreamPath: string;
}

interface PrefixRoute {
  prefix: string;
  api: ApiDefinition;
}

/** Host header without port and trailing dot, lower case; undefined when absent or malformed. */
export function normalizeHost(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const trimmed = host.trim().toLowerCase();
  const withoutPort = trimmed.startsWith('[') ? trimmed.slice(0, trimmed.indexOf(']') + 1) : trimmed.split(':')[0];
  const name = withoutPort?.replace(/\.$/, '');
  return name ? name : undefined;
}

/** True when `path` is `prefix` itself or lies under it (`/a` covers `/a`, `/a/`, `/a/b`, not `/ab`). */
function covers(prefix: string, path: string): boolean {
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47) /* / */;
}

/**
 * Which API a request is for, from an immutable snapshot of the routing configuration:
 * 1. an API that claims the request's host gets it, whatever the path (its own path prefix, when
 *    it has one and the path is under it, is stripped);
 * 2. otherwise the longest matching path prefix wins: `/<slug>` of every API, and each API's
 *    extra `pathPrefix`; the prefix is stripped.
 * Built once per configuration version; `match` allocates nothing but the result.
 */
export class RoutingTable {
  readonly version: number;
  readonly apis: readonly ApiDefinition[];
  private readonly byHost = new Map<string, ApiDefinition>();
  /** Longest prefix first. */
  private readonly prefixes: PrefixRoute[] = [];

  constructor(apis: readonly ApiDefinition[], version = 0) {
    this.version = version;
    this.apis = apis;
    for (const api of apis) {
      for (const host of api.hosts) this.byHost.set(host.toLowerCase(), api);
      this.prefixes.push({ prefix: `/${api.slug}`, api });
      if (api.pathPrefix) this.prefixes.push({ prefix: api.pathPrefix.replace(/\/+$/, ''), api });
    }
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(host: string | undefined, path: string): RouteMatch | undefined {
    const hostName = normalizeHost(host);
    const hostApi = hostName ? this.byHost.get(hostName) : undefined;
    if (hostApi) {
      const prefix = hostApi.pathPrefix?.replace(/\/+$/, '');
      return { api: hostApi, upstreamPath: prefix && covers(prefix, path) ? path.slice(prefix.length) || '/' : path };
    }
    for (const route of this.prefixes) {
      if (covers(route.prefix, path)) return { api: route.api, upstreamPath: path.slice(route.prefix.length) || '/' };
    }
    return undefined;
  }
}
