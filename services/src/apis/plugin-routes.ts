import { firstPartyPlugins } from '@tollgate/plugins';
import { z } from 'zod';
import { defineRoute } from '../http/route.js';
import { authenticate } from '../identity/authenticate.js';
import type { Database } from '../storage/database.js';

export interface PluginRouteOptions {
  database: Database;
  signingKey: Buffer;
}

const pluginSchema = z.object({
  name: z.string().describe('What an API names in its plugins list'),
  description: z.string(),
});

/** The plugins an API may list (`plugins` of `/v1/apis`): today the first-party ones. */
export function pluginRoutes(options: PluginRouteOptions) {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/plugins',
      operationId: 'listPlugins',
      summary: 'The plugins an API can use, by name',
      description:
        'Anyone signed in. Name one in the plugins of POST or PATCH /v1/apis with its config; a name not listed here, or a config the plugin refuses, is 400 validation_failed.',
      tags: ['apis'],
      responses: { 200: { description: 'Plugins', schema: z.object({ plugins: z.array(pluginSchema) }) } },
      handler: async (ctx) => {
        await authenticate(ctx, options);
        ctx.body = {
          plugins: firstPartyPlugins.map((plugin) => ({ name: plugin.name, description: plugin.description })),
        };
      },
    }),
  ];
}
