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
}

export interface PluginResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** What a request hook decides: let the call through, or answer it here without calling the upstream. */
export type RequestHookResult =
  | { action: 'continue'; headers?: Record<string, string> }
  | { action: 'respond'; status: number; headers?: Record<string, string>; body?: string };

export interface GatewayPlugin {
  name: string;
  onRequest?(request: PluginRequest): Promise<RequestHookResult> | RequestHookResult;
  onResponse?(request: PluginRequest, response: PluginResponse): Promise<void> | void;
}
