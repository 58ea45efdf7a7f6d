/**
 * The contract between the gateway and its plugins. First-party plugins (CORS, request-size limit)
 * and the sandboxed runtime for marketplace plugins implement it in later changes; it lives here so
 * plugin authors depend on this package alone, never on gateway internals.
 */

/** Bumped on any breaking change to the hook signatures; a plugin manifest declares the version it targets. */
export const pluginApiVersion = 1;

export interface PluginRequest {
  method: string;
  /** Path after the API's prefix, with the query string. */
  path: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  requestId: string;
  /**
   * The slug of the plan of the key's team (its live subscription's, else the default plan's;
   * `none` without either). Set once the key is verified and its team's policy is known: undefined
   * in `onPreAuth`, on a gateway run without keys or limits, and in `onResponse` of a call refused
   * before.
   */
  plan?: string | undefined;
  /**
   * The feature flags of that plan (docs/plans.md#entitlements): `true`/`false`, a number or a
   * string of up to 200 characters by name; `{}` when the plan has none. Set with `plan`. Shared by
   * every call of the team (frozen): read it, never change it. Upstreams get the same map in the
   * `Tollgate-Entitlements` header.
   */
  entitlements?: Readonly<Record<string, boolean | number | string>> | undefined;
}

export interface PluginResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** What a request hook decides: let the call through, or answer it here without calling the upstream. */
export type RequestHookResult =
  | {
      action: 'continue';
      /** Headers to add to (or replace on) the request sent upstream. */
      headers?: Record<string, string>;
      /** Refuse a body larger than this (413), counted as it streams when it has no Content-Length. */
      maxBodyBytes?: number;
    }
  | { action: 'respond'; status: number; headers?: Record<string, string>; body?: string };

export interface GatewayPlugin {
  name: string;
  /**
   * Runs before the API key is checked, for requests that carry none by design (CORS preflights).
   * Return `respond` to answer, `continue` to go on to the key check and `onRequest`.
   */
  onPreAuth?(request: PluginRequest): Promise<RequestHookResult> | RequestHookResult;
  onRequest?(request: PluginRequest): Promise<RequestHookResult> | RequestHookResult;
  /** Runs on every answer, the gateway's own errors included; may change the headers. */
  onResponse?(request: PluginRequest, response: PluginResponse): void;
}

/** How a plugin is named in an API's plugin list, checked, and instantiated with its configuration. */
export interface PluginDefinition<Config = unknown> {
  name: string;
  description: string;
  /** Validates a configuration: the parsed config, or one message per problem. */
  parseConfig(config: unknown): { ok: true; config: Config } | { ok: false; errors: string[] };
  create(config: Config): GatewayPlugin;
}

export { corsPlugin } from './first-party/cors.js';
export { findPlugin, firstPartyPlugins } from './first-party/index.js';
export { requestSizeLimitPlugin } from './first-party/request-size-limit.js';
