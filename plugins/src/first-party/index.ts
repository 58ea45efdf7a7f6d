import type { PluginDefinition } from '../index.js';
import { corsPlugin } from './cors.js';
import { requestSizeLimitPlugin } from './request-size-limit.js';

/** The plugins every installation has, by name. Marketplace plugins join them in a later change. */
export const firstPartyPlugins: readonly PluginDefinition<never>[] = [
  corsPlugin as PluginDefinition<never>,
  requestSizeLimitPlugin as PluginDefinition<never>,
];

export function findPlugin(name: string): PluginDefinition<never> | undefined {
  return firstPartyPlugins.find((plugin) => plugin.name === name);
}
