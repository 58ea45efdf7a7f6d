import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate, type Caller, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import { can } from '../identity/permissions.js';
import type { KeyEvents } from '../keys/key-events.js';
import type { Logger } from '../logging/logger.js';
import type { Database } from '../storage/database.js';
import {
  type Api,
  apiFailurePolicySchema,
  apiHostSchema,
  apiMeteredMetricsSchema,
  apiNameSchema,
  apiPathPrefixSchema,
  apiPluginsSchema,
  apiSlugSchema,
  apiTimeoutMsSchema,
  createApi,
  currentConfigVersion,
  deleteApi,
  findApi,
  listApis,
  updateApi,
} from './apis.js';
import type { ConfigBus } from './config-bus.js';

export interface ApiRouteOptions {
  database: Database;
  signingKey: Buffer;
  /** Told the new configuration version after each change commits; without one, gateways only notice by polling. */
  configBus?: ConfigBus | undefined;
  /** Told about the keys a forced delete revokes, so gateways drop them from their caches at once. */
  keyEvents?: KeyEvents | undefined;
  logger: Logger;
}

const publicApiSchema = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  hosts: z.array(z.string()),
  path_prefix: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const operatorApiSchema = publicApiSchema.extend({
  upstreams: z.array(z.string()),
  timeout_ms: z.number().int(),
  failure_policy: apiFailurePolicySchema,
  metered_metrics: z.array(z.enum(['calls', 'bandwidth'])),
  plugins: z.array(z.object({ name: z.string(), config: z.record(z.string(), z.unknown()) })),
  created_by_user_id: z.string().nullable(),
});

const apiSchema = operatorApiSchema
  .partial({
    upstreams: true,
    timeout_ms: true,
    failure_policy: true,
    metered_metrics: true,
    plugins: true,
    created_by_user_id: true,
  })
  .describe('An API; the fields after updated_at only for callers holding apis:manage (operators)');

const publicBody = (api: Api) => ({
  id: api.id,
  slug: api.slug,
  name: api.name,
  hosts: api.hosts,
  path_prefix: api.pathPrefix,
  created_at: api.createdAt.toISOString(),
  updated_at: api.updatedAt.toISOString(),
});

const operatorBody = (api: Api) => ({
  ...publicBody(api),
  upstreams: api.upstreams,
  timeout_ms: api.timeoutMs,
  failure_policy: api.failurePolicy,
  metered_metrics: api.meteredMetrics,
  plugins: api.plugins,
  created_by_user_id: api.createdByUserId,
});

// Upstream URLs are checked by apis.ts, which answers `invalid_upstream` rather than `validation_failed`.
const upstreamsField = z
  .array(z.string().describe('http(s) base URL without credentials, query or fragment; else 400 invalid_upstream'))
  .max(20);

const createBody = z.strictObject({
  name: apiNameSchema,
  slug: apiSlugSchema,
  upstreams: upstreamsField,
  hosts: z.array(apiHostSchema).max(50).optional(),
  path_prefix: apiPathPrefixSchema.nullable().optional(),
  timeout_ms: apiTimeoutMsSchema.optional(),
  failure_policy: apiFailurePolicySchema.optional(),
  metered_metrics: apiMeteredMetricsSchema.optional(),
  plugins: apiPluginsSchema.optional(),
});

const updateBody = createBody.partial();

type UpdateBody = z.output<typeof updateBody>;

/** snake_case body -> the store's camelCase input, leaving out what was not sent. */
function storeInput(body: UpdateBody) {
  return {
    ...(body.name === undefined ? {} : { name: body.name }),
    ...(body.slug === undefined ? {} : { slug: body.slug }),
    ...(body.upstreams === undefined ? {} : { upstreams: body.upstreams }),
    ...(body.hosts === undefined ? {} : { hosts: body.hosts }),
    ...(body.path_prefix === undefined ? {} : { pathPrefix: body.path_prefix }),
    ...(body.timeout_ms === undefined ? {} : { timeoutMs: body.timeout_ms }),
    ...(body.failure_policy === undefined ? {} : { failurePolicy: body.failure_policy }),
    ...(body.metered_metrics === undefined ? {} : { meteredMetrics: body.metered_metrics }),
    ...(body.plugins === undefined ? {} : { plugins: body.plugins }),
  };
}

const params = (ctx: Context) => (ctx as unknown as { params: Record<string, string> }).params;

function forceFlag(ctx: Context): boolean {
  const value = ctx.query.force;
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw new TollgateError('validation_failed', 'force: use force=true or leave it out');
}

/** The API registry: operators register APIs (`apis:manage`); everyone signed in can see where they are served. */
export function apiRoutes(options: ApiRouteOptions) {
  const { database } = options;
  const logger = options.logger.child({ component: 'apis' });

  const isOperator = (caller: Caller) =>
    can({ userId: caller.user.id, isOperator: caller.user.installationRole === 'admin' }, 'apis:manage');

  const operatorCaller = async (ctx: Context) => {
    const caller = await authenticate(ctx, options);
    await authorize(ctx, { database, caller, permission: 'apis:manage' });
    return caller;
  };

  /** After the commit: a bus that is down must not turn a saved change into an error. */
  const publish = async (version: number) => {
    if (!options.configBus) return;
    try {
      await options.configBus.publish(version);
    } catch (error) {
      logger.warn(
        { err: error, version },
        'could not publish the new config version; gateways will find it when they poll',
      );
    }
  };

  return [
    defineRoute({
      method: 'post',
      path: '/v1/apis',
      operationId: 'createApi',
      summary: 'Register an API the gateway serves (apis:manage, operators)',
      description:
        'The gateway serves it at /<slug>/..., at path_prefix, and for every request whose Host is in hosts. A host or path prefix belongs to one API.',
      tags: ['apis'],
      body: createBody,
      responses: { 201: { description: 'Registered', schema: operatorApiSchema } },
      handler: async (ctx, { body }) => {
        const caller = await operatorCaller(ctx);
        const { name, slug, upstreams } = body;
        const change = await database.transaction(async (tx) => {
          const created = await createApi(tx, {
            ...storeInput(body),
            name,
            slug,
            upstreams,
            createdByUserId: caller.user.id,
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'api.created',
              outcome: 'success',
              targetType: 'api',
              targetId: created.api.id,
              details: { slug: created.api.slug, config_version: created.configVersion },
            }),
          );
          return created;
        });
        await publish(change.configVersion);
        ctx.status = 201;
        ctx.body = operatorBody(change.api);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/apis',
      operationId: 'listApis',
      summary: 'The APIs the gateway serves, by slug',
      description:
        'Anyone signed in sees slug, name, hosts and path prefix; operators (apis:manage) also upstreams, timeouts, failure policy, metrics and plugins.',
      tags: ['apis'],
      responses: {
        200: {
          description: 'APIs',
          schema: z.object({ apis: z.array(apiSchema), config_version: z.number().int() }),
        },
      },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        const body = isOperator(caller) ? operatorBody : publicBody;
        const [apis, configVersion] = [await listApis(database), await currentConfigVersion(database)];
        ctx.body = { apis: apis.map(body), config_version: configVersion };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/apis/:api',
      operationId: 'getApi',
      summary: 'An API, by id or slug',
      description: 'Operators (apis:manage) also see upstreams, timeouts, failure policy, metrics and plugins.',
      tags: ['apis'],
      responses: { 200: { description: 'The API', schema: apiSchema } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, options);
        const api = await findApi(database, params(ctx).api ?? '');
        if (!api) throw new TollgateError('not_found', 'no such API', { hint: 'tollgate apis list shows them' });
        ctx.body = isOperator(caller) ? operatorBody(api) : publicBody(api);
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/v1/apis/:api',
      operationId: 'updateApi',
      summary: 'Change an API (apis:manage, operators)',
      description:
        'Send only the fields to change: hosts, upstreams, metered_metrics and plugins replace the whole list; path_prefix null removes it.',
      tags: ['apis'],
      body: updateBody,
      responses: { 200: { description: 'The API', schema: operatorApiSchema } },
      handler: async (ctx, { body }) => {
        const caller = await operatorCaller(ctx);
        const change = await database.transaction(async (tx) => {
          const updated = await updateApi(tx, params(ctx).api ?? '', storeInput(body));
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'api.updated',
              outcome: 'success',
              targetType: 'api',
              targetId: updated.api.id,
              details: { slug: updated.api.slug, changed: updated.changed, config_version: updated.configVersion },
            }),
          );
          return updated;
        });
        await publish(change.configVersion);
        ctx.body = operatorBody(change.api);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/apis/:api',
      operationId: 'deleteApi',
      summary: 'Delete an API (apis:manage, operators)',
      description:
        'Refused with 409 api_in_use while live API keys are limited to it, unless ?force=true: then those keys lose this API, and a key left with no API is revoked (never widened to every API).',
      tags: ['apis'],
      responses: {
        200: {
          description: 'Deleted',
          schema: z.object({ id: z.string(), slug: z.string(), revoked_key_ids: z.array(z.string()) }),
        },
      },
      handler: async (ctx) => {
        const force = forceFlag(ctx);
        const caller = await operatorCaller(ctx);
        const change = await database.transaction(async (tx) => {
          const deleted = await deleteApi(tx, params(ctx).api ?? '', { force });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'api.deleted',
              outcome: 'success',
              targetType: 'api',
              targetId: deleted.api.id,
              details: {
                slug: deleted.api.slug,
                force,
                revoked_key_ids: deleted.revokedKeyIds,
                config_version: deleted.configVersion,
              },
            }),
          );
          return deleted;
        });
        await publish(change.configVersion);
        for (const lookupId of change.revokedKeyLookupIds) {
          await options.keyEvents?.publishInvalidation(lookupId).catch((error: unknown) => {
            logger.warn(
              { err: error },
              'could not announce a revoked key; gateways drop it when its cache entry expires',
            );
          });
        }
        ctx.body = { id: change.api.id, slug: change.api.slug, revoked_key_ids: change.revokedKeyIds };
      },
    }),
  ];
}
