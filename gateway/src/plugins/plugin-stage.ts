import {
  findPlugin,
  type GatewayPlugin,
  type PluginDefinition,
  type PluginRequest,
  type PluginResponse,
} from '@tollgate/plugins';
import { type ApiDefinition, TollgateError } from '@tollgate/services';

/** An answer a hook gave instead of the upstream. */
export interface HookAnswer {
  status: number;
  headers: Record<string, string>;
  body: string | undefined;
}

/** What the request hooks decided for a call that goes on to the upstream. */
export interface RequestDecision {
  headers: Record<string, string>;
  maxBodyBytes: number | undefined;
}

/**
 * The plugins of one API, in their configured order, built once per configuration of the API.
 * An unknown plugin or a configuration that no longer parses makes the API answer 500
 * `plugin_misconfigured` rather than run without a plugin its operator relies on.
 */
export class PluginChain {
  readonly plugins: readonly GatewayPlugin[];
  readonly problem: string | undefined;

  constructor(
    api: Pick<ApiDefinition, 'slug' | 'plugins'>,
    find: (name: string) => PluginDefinition<never> | undefined = findPlugin,
  ) {
    const plugins: GatewayPlugin[] = [];
    let problem: string | undefined;
    for (const entry of api.plugins) {
      const definition = find(entry.name);
      if (!definition) {
        problem ??= `API ${api.slug} uses the unknown plugin ${entry.name}`;
        continue;
      }
      const parsed = definition.parseConfig(entry.config);
      if (!parsed.ok) {
        problem ??= `plugin ${entry.name} of API ${api.slug}: ${parsed.errors.join('; ')}`;
        continue;
      }
      plugins.push(definition.create(parsed.config));
    }
    this.plugins = plugins;
    this.problem = problem;
  }

  get empty(): boolean {
    return this.plugins.length === 0 && this.problem === undefined;
  }

  private check(): void {
    if (this.problem) throw new TollgateError('plugin_misconfigured', this.problem);
  }

  /** Pre-auth hooks (CORS preflights): an answer, or undefined to go on. */
  async preAuth(request: PluginRequest): Promise<HookAnswer | undefined> {
    this.check();
    for (const plugin of this.plugins) {
      if (!plugin.onPreAuth) continue;
      const result = await plugin.onPreAuth(request);
      if (result.action === 'respond')
        return { status: result.status, headers: result.headers ?? {}, body: result.body };
    }
    return undefined;
  }

  /** Request hooks in order; the first answer stops the chain. */
  async request(request: PluginRequest): Promise<HookAnswer | RequestDecision> {
    this.check();
    const headers: Record<string, string> = {};
    let maxBodyBytes: number | undefined;
    for (const plugin of this.plugins) {
      if (!plugin.onRequest) continue;
      const result = await plugin.onRequest(request);
      if (result.action === 'respond')
        return { status: result.status, headers: result.headers ?? {}, body: result.body };
      Object.assign(headers, result.headers);
      if (result.maxBodyBytes !== undefined)
        maxBodyBytes = Math.min(maxBodyBytes ?? result.maxBodyBytes, result.maxBodyBytes);
    }
    return { headers, maxBodyBytes };
  }

  /** Response hooks in reverse order (the first plugin sees the answer last, as an onion). */
  response(request: PluginRequest, response: PluginResponse): void {
    for (let index = this.plugins.length - 1; index >= 0; index--) this.plugins[index]?.onResponse?.(request, response);
  }
}

/**
 * The chains of API definitions (definitions are replaced, not changed, on reload, so each is built
 * once). `extra`: plugin definitions beyond the first-party ones, found by name after them (an
 * embedder's own plugins, tests).
 */
export function pluginChains(extra: readonly PluginDefinition<never>[] = []): (api: ApiDefinition) => PluginChain {
  const find =
    extra.length === 0
      ? findPlugin
      : (name: string) => findPlugin(name) ?? extra.find((plugin) => plugin.name === name);
  const chains = new WeakMap<ApiDefinition, PluginChain>();
  return (api) => {
    let chain = chains.get(api);
    if (!chain) {
      chain = new PluginChain(api, find);
      chains.set(api, chain);
    }
    return chain;
  };
}

/** The chain of an API definition, with the first-party plugins. */
export const pluginChainFor = pluginChains();
