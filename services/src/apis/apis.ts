import { findPlugin, firstPartyPlugins } from '@tollgate/plugins';
import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import type { ApiDefinition } from './api-definition.js';

/**
 * The API registry: the APIs the gateway serves, owned by the control plane (tables of migration
 * 0012). Every write here bumps `config_version` in the caller's transaction; the caller publishes
 * the returned version on the config bus once the transaction has committed (api-routes.ts).
 */

/** An API as the control plane knows it: what gateways load, plus who made it and when. */
export interface Api extends ApiDefinition {
  createdAt: Date;
  createdByUserId: string | null;
}

/** Paths the gateway answers itself (or keeps for itself): never an API's slug or first path segment. */
export const reservedApiSlugs = ['healthz', 'readyz', 'metrics', 'v1', '_tollgate'] as const;

const slugPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
// One DNS label: letters, digits and inner dashes, 1 to 63 characters (RFC 1123 section 2.1).
const hostPattern = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
// RFC 3986 pchar and `/`, no trailing `/` (which would make `/a/` differ from `/a`).
const pathPrefixPattern = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*[A-Za-z0-9._~!$&'()*+,;=:@%-]$/;
const pluginNamePattern = /^(?:@[a-z0-9][a-z0-9-]*\/)?[a-z0-9][a-z0-9._-]{0,99}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isReserved = (word: string) => (reservedApiSlugs as readonly string[]).includes(word);

export const apiSlugSchema = z
  .string()
  .regex(slugPattern, 'use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit')
  .refine((slug) => !isReserved(slug), `is reserved (${reservedApiSlugs.join(', ')})`);

export const apiNameSchema = z.string().trim().min(1, 'must not be empty').max(200);

/** Lower-cased, a trailing dot dropped; a host name without scheme, port or path. */
export const apiHostSchema = z
  .string()
  .max(254)
  .transform((host) => host.trim().toLowerCase().replace(/\.$/, ''))
  .refine(
    (host) => hostPattern.test(host),
    'must be a host name like api.example.com (no scheme, port or path; xn-- form for other scripts)',
  );

export const apiPathPrefixSchema = z
  .string()
  .max(200)
  .regex(pathPrefixPattern, 'must start with / and not end with /, like /weather/v1')
  .refine((prefix) => !prefix.includes('//'), 'must not contain an empty segment (//)')
  .refine(
    (prefix) => prefix.split('/').every((segment) => segment !== '.' && segment !== '..'),
    'must not contain . or .. segments',
  )
  .refine((prefix) => !/%(?![0-9A-Fa-f]{2})/.test(prefix), 'must use % only to start an escape like %20')
  .refine(
    (prefix) => !isReserved(prefix.split('/')[1] ?? ''),
    `must not start with a reserved path (${reservedApiSlugs.map((word) => `/${word}`).join(', ')})`,
  );

/**
 * An upstream base URL, canonical: lower-case scheme and host, no default port, no trailing `/`
 * (`https://API.example.com:443/v2/` is stored as `https://api.example.com/v2`).
 */
export const apiUpstreamSchema = z
  .string()
  .max(2048)
  .transform((text, ctx) => {
    const trimmed = text.trim();
    const problem = upstreamProblem(trimmed);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    const url = new URL(trimmed);
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  });

function upstreamProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'must be an absolute http or https URL, like https://api.example.com';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must use http or https, not ${url.protocol}`;
  if (url.hostname === '') return 'must name a host';
  if (url.username !== '' || url.password !== '') return 'must not carry credentials (user:password@)';
  if (text.includes('?')) return 'must not have a query string';
  if (text.includes('#')) return 'must not have a fragment';
  return undefined;
}

export const apiTimeoutMsSchema = z.number().int('must be whole milliseconds').min(100).max(300_000);
export const apiFailurePolicySchema = z.enum(['fail-open', 'fail-closed']);
export const apiMeteredMetricsSchema = z
  .array(z.enum(['calls', 'bandwidth']))
  .max(2)
  .transform((metrics) => [...new Set(metrics)]);
/**
 * An API's ordered plugin list. Beyond its shape, each entry must name a plugin this installation
 * has, at most once, with a configuration that plugin's own `parseConfig` accepts: refused here, a
 * bad list never reaches the gateways, which would answer 500 `plugin_misconfigured` for it.
 */
export const apiPluginsSchema = z
  .array(
    z.strictObject({
      name: z.string().regex(pluginNamePattern, 'must be a plugin name like cors or @acme/geo-block'),
      config: z.record(z.string(), z.unknown()).default({}),
    }),
  )
  .max(20)
  .superRefine((plugins, ctx) => {
    const seen = new Set<string>();
    for (const [index, entry] of plugins.entries()) {
      if (seen.has(entry.name)) {
        ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `${entry.name} is listed twice` });
        continue;
      }
      seen.add(entry.name);
      const definition = findPlugin(entry.name);
      if (!definition) {
        const known = firstPartyPlugins.map((plugin) => plugin.name).join(', ');
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `no plugin named ${entry.name} (this installation has ${known})`,
        });
        continue;
      }
      const parsed = definition.parseConfig(entry.config);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', path: [index, 'config'], message: parsed.errors.join('; ') });
    }
  });

const fields = {
  slug: apiSlugSchema,
  name: apiNameSchema,
  hosts: z
    .array(apiHostSchema)
    .max(50)
    .transform((hosts) => [...new Set(hosts)]),
  pathPrefix: apiPathPrefixSchema.nullable(),
  upstreams: z.array(apiUpstreamSchema).min(1, 'give at least one upstream').max(20),
  timeoutMs: apiTimeoutMsSchema,
  failurePolicy: apiFailurePolicySchema,
  meteredMetrics: apiMeteredMetricsSchema,
  plugins: apiPluginsSchema,
};

const createSchema = z.strictObject({
  slug: fields.slug,
  name: fields.name,
  hosts: fields.hosts.default([]),
  pathPrefix: fields.pathPrefix.default(null),
  upstreams: fields.upstreams,
  timeoutMs: fields.timeoutMs.default(30_000),
  failurePolicy: fields.failurePolicy.default('fail-closed'),
  meteredMetrics: fields.meteredMetrics.default(['calls', 'bandwidth']),
  plugins: fields.plugins.default([]),
});

const updateSchema = z.strictObject({
  slug: fields.slug.optional(),
  name: fields.name.optional(),
  hosts: fields.hosts.optional(),
  pathPrefix: fields.pathPrefix.optional(),
  upstreams: fields.upstreams.optional(),
  timeoutMs: fields.timeoutMs.optional(),
  failurePolicy: fields.failurePolicy.optional(),
  meteredMetrics: fields.meteredMetrics.optional(),
  plugins: fields.plugins.optional(),
});

export type CreateApiInput = z.input<typeof createSchema>;
export type UpdateApiInput = z.input<typeof updateSchema>;
type ApiFields = z.output<typeof createSchema>;

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** Input that fails its schema: `invalid_upstream` when an upstream is the first problem, else `validation_failed`. */
function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown): z.output<Schema> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    path: issue.path.map((part) => (typeof part === 'string' ? snakeCase(part) : String(part))).join('.'),
    message: issue.message,
  }));
  const first = parsed.error.issues[0];
  const message = issues[0] ? `${issues[0].path || 'body'}: ${issues[0].message}` : 'the API is invalid';
  const upstream = first?.path[0] === 'upstreams' && first.path.length > 1;
  throw new TollgateError(upstream ? 'invalid_upstream' : 'validation_failed', message, {
    details: { issues },
    ...(upstream ? { hint: 'an upstream is an http(s) base URL, like https://api.example.com/v2' } : {}),
  });
}

interface ApiRow {
  id: string;
  slug: string;
  name: string;
  hosts: string[];
  path_prefix: string | null;
  upstreams: string[];
  timeout_ms: number;
  failure_policy: ApiDefinition['failurePolicy'];
  metered_metrics: ApiDefinition['meteredMetrics'];
  plugins: ApiDefinition['plugins'];
  created_by_user_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const columns = `id, slug, name, hosts, path_prefix, upstreams, timeout_ms, failure_policy, metered_metrics, plugins,
  created_by_user_id, created_at, updated_at`;

const toApi = (row: ApiRow): Api => ({
  id: row.id,
  slug: row.slug,
  name: row.name,
  hosts: row.hosts,
  pathPrefix: row.path_prefix,
  upstreams: row.upstreams,
  timeoutMs: row.timeout_ms,
  failurePolicy: row.failure_policy,
  meteredMetrics: row.metered_metrics,
  plugins: row.plugins,
  createdByUserId: row.created_by_user_id,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** What the routing snapshot carries: the API without its bookkeeping. */
export function toApiDefinition(api: Api): ApiDefinition {
  const { createdAt: _createdAt, createdByUserId: _createdBy, ...definition } = api;
  return definition;
}

/**
 * Bumps the routing configuration version and returns the new one. The row lock it takes is held
 * until the transaction ends, so changes to the routing configuration happen one at a time, which
 * also makes the conflict checks below free of races.
 */
export async function bumpConfigVersion(tx: Queryable): Promise<number> {
  const result = await tx.query<{ version: string }>(
    'UPDATE config_version SET version = version + 1, updated_at = now() RETURNING version',
  );
  return Number(result.rows[0]?.version);
}

/** The current routing configuration version (0 before the first change). */
export async function currentConfigVersion(db: Queryable): Promise<number> {
  const result = await db.query<{ version: string }>('SELECT version FROM config_version');
  return Number(result.rows[0]?.version ?? 0);
}

/**
 * Everything a gateway routes by, and the version it is, read in one statement so the two agree.
 * Ordered by slug.
 */
export async function loadRoutingConfig(db: Queryable): Promise<{ version: number; apis: ApiDefinition[] }> {
  const result = await db.query<{ config_version: string } & ({ id: null } | ApiRow)>(
    `SELECT v.version AS config_version, a.id, a.slug, a.name, a.hosts, a.path_prefix, a.upstreams, a.timeout_ms,
       a.failure_policy, a.metered_metrics, a.plugins, a.created_by_user_id, a.created_at, a.updated_at
     FROM config_version v LEFT JOIN apis a ON true ORDER BY a.slug`,
  );
  const version = Number(result.rows[0]?.config_version ?? 0);
  const apis = result.rows.filter((row): row is ApiRow & { config_version: string } => row.id !== null);
  return { version, apis: apis.map((row) => toApiDefinition(toApi(row))) };
}

/** What a gateway loads: every API, ordered by slug. */
export async function listApiDefinitions(db: Queryable): Promise<ApiDefinition[]> {
  return (await loadRoutingConfig(db)).apis;
}

export async function listApis(db: Queryable): Promise<Api[]> {
  const result = await db.query<ApiRow>(`SELECT ${columns} FROM apis ORDER BY slug`);
  return result.rows.map(toApi);
}

/** An API by id or slug, or undefined. */
export async function findApi(
  db: Queryable,
  idOrSlug: string,
  options: { forUpdate?: boolean } = {},
): Promise<Api | undefined> {
  const byId = uuidPattern.test(idOrSlug);
  const result = await db.query<ApiRow>(
    `SELECT ${columns} FROM apis WHERE ${byId ? 'id = $1' : 'slug = $1'}${options.forUpdate ? ' FOR UPDATE' : ''}`,
    [byId ? idOrSlug : idOrSlug.toLowerCase()],
  );
  return result.rows[0] ? toApi(result.rows[0]) : undefined;
}

async function findApiOrFail(tx: Queryable, idOrSlug: string): Promise<Api> {
  const api = await findApi(tx, idOrSlug, { forUpdate: true });
  if (!api) throw new TollgateError('not_found', `no API ${idOrSlug}`, { hint: 'tollgate apis list shows them' });
  return api;
}

/**
 * Refuses a slug, path prefix or host another API routes, naming that API. Runs after
 * bumpConfigVersion, whose lock keeps other writers out until this transaction ends; the primary
 * keys of api_hosts and api_path_prefixes stay the last word (see `conflictError`).
 */
async function checkConflicts(tx: Queryable, fields: ApiFields, selfId: string | null): Promise<void> {
  const other = selfId ?? '00000000-0000-0000-0000-000000000000';
  const slugOwner = await tx.query<{ slug: string }>('SELECT slug FROM apis WHERE slug = $1 AND id <> $2', [
    fields.slug,
    other,
  ]);
  if (slugOwner.rowCount > 0) {
    throw new TollgateError('slug_taken', `the API slug "${fields.slug}" is taken`, { hint: 'choose another slug' });
  }
  const prefixes = routedPrefixes(fields);
  const prefixOwners = await tx.query<{ prefix: string; slug: string; kind: string }>(
    `SELECT p.prefix, a.slug, p.kind FROM api_path_prefixes p JOIN apis a ON a.id = p.api_id
     WHERE p.prefix = ANY($1::text[]) AND p.api_id <> $2 ORDER BY p.prefix`,
    [prefixes.map((entry) => entry.prefix), other],
  );
  for (const owner of prefixOwners.rows) {
    const mine = prefixes.find((entry) => entry.prefix === owner.prefix);
    const theirs = owner.kind === 'slug' ? 'its slug' : 'its path prefix';
    if (mine?.kind === 'slug') {
      throw new TollgateError(
        'slug_taken',
        `the slug "${fields.slug}" would serve ${owner.prefix}, which the API ${owner.slug} routes (${theirs})`,
        { details: { prefix: owner.prefix, api: owner.slug }, hint: 'choose another slug' },
      );
    }
    throw new TollgateError(
      'path_prefix_taken',
      `the path prefix ${owner.prefix} is routed to the API ${owner.slug} (${theirs})`,
      {
        details: { prefix: owner.prefix, api: owner.slug },
        hint: 'choose another path prefix',
      },
    );
  }
  const hostOwners = await tx.query<{ host: string; slug: string }>(
    `SELECT h.host, a.slug FROM api_hosts h JOIN apis a ON a.id = h.api_id
     WHERE h.host = ANY($1::text[]) AND h.api_id <> $2 ORDER BY h.host`,
    [fields.hosts, other],
  );
  const taken = hostOwners.rows[0];
  if (taken) {
    throw new TollgateError('host_taken', `the host ${taken.host} is routed to the API ${taken.slug}`, {
      details: { host: taken.host, api: taken.slug },
      hint: 'a host belongs to one API; remove it there first',
    });
  }
}

/** `/<slug>` and the path prefix, once each. */
function routedPrefixes(
  fields: Pick<ApiFields, 'slug' | 'pathPrefix'>,
): { prefix: string; kind: 'slug' | 'path_prefix' }[] {
  const prefixes: { prefix: string; kind: 'slug' | 'path_prefix' }[] = [{ prefix: `/${fields.slug}`, kind: 'slug' }];
  if (fields.pathPrefix && fields.pathPrefix !== `/${fields.slug}`) {
    prefixes.push({ prefix: fields.pathPrefix, kind: 'path_prefix' });
  }
  return prefixes;
}

/** Makes api_hosts and api_path_prefixes say what the API row says. */
async function syncRoutingClaims(tx: Queryable, apiId: string, fields: ApiFields): Promise<void> {
  await tx.query('DELETE FROM api_hosts WHERE api_id = $1', [apiId]);
  await tx.query('DELETE FROM api_path_prefixes WHERE api_id = $1', [apiId]);
  if (fields.hosts.length > 0) {
    await tx.query('INSERT INTO api_hosts (host, api_id) SELECT unnest($2::text[]), $1::uuid', [apiId, fields.hosts]);
  }
  const prefixes = routedPrefixes(fields);
  await tx.query(
    'INSERT INTO api_path_prefixes (prefix, api_id, kind) SELECT unnest($2::text[]), $1::uuid, unnest($3::text[])',
    [apiId, prefixes.map((entry) => entry.prefix), prefixes.map((entry) => entry.kind)],
  );
}

/** A unique violation the checks did not foresee (a writer that skipped bumpConfigVersion): still a clear 409. */
function conflictError(error: unknown): unknown {
  const { code, constraint } = error as { code?: string; constraint?: string };
  if (code !== '23505') return error;
  if (constraint === 'api_hosts_pkey')
    return new TollgateError('host_taken', 'a host of this API is routed to another API');
  if (constraint === 'api_path_prefixes_pkey') {
    return new TollgateError('path_prefix_taken', 'a path prefix of this API is routed to another API');
  }
  return new TollgateError('slug_taken', 'the API slug is taken', { hint: 'choose another slug' });
}

export interface ApiChange {
  api: Api;
  /** The routing configuration version this change made; publish it once the transaction commits. */
  configVersion: number;
}

/** Registers an API. Call inside a transaction; validation and conflicts throw before anything is written. */
export async function createApi(
  tx: Queryable,
  input: CreateApiInput & { createdByUserId?: string | null },
): Promise<ApiChange> {
  const { createdByUserId, ...rest } = input;
  const fields = parseInput(createSchema, rest);
  const configVersion = await bumpConfigVersion(tx);
  await checkConflicts(tx, fields, null);
  try {
    const result = await tx.query<ApiRow>(
      `INSERT INTO apis (slug, name, hosts, path_prefix, upstreams, timeout_ms, failure_policy, metered_metrics, plugins,
         created_by_user_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
       RETURNING ${columns}`,
      [
        fields.slug,
        fields.name,
        fields.hosts,
        fields.pathPrefix,
        fields.upstreams,
        fields.timeoutMs,
        fields.failurePolicy,
        fields.meteredMetrics,
        JSON.stringify(fields.plugins),
        createdByUserId ?? null,
      ],
    );
    const api = toApi(result.rows[0] as ApiRow);
    await syncRoutingClaims(tx, api.id, fields);
    return { api, configVersion };
  } catch (error) {
    throw conflictError(error);
  }
}

const fieldNames = Object.keys(fields) as (keyof ApiFields)[];

/**
 * Changes some fields of an API (`pathPrefix: null` removes it, `hosts: []` all hosts). Answers the
 * API and the snake_case names of the fields whose value changed. Call inside a transaction.
 */
export async function updateApi(
  tx: Queryable,
  idOrSlug: string,
  patch: UpdateApiInput,
): Promise<ApiChange & { changed: string[] }> {
  const changes = parseInput(updateSchema, patch);
  if (Object.values(changes).every((value) => value === undefined)) {
    throw new TollgateError('validation_failed', 'body: give at least one field to change');
  }
  const configVersion = await bumpConfigVersion(tx);
  const current = await findApiOrFail(tx, idOrSlug);
  const merged: ApiFields = { ...current };
  for (const name of fieldNames) {
    const value = changes[name];
    if (value !== undefined) (merged as Record<string, unknown>)[name] = value;
  }
  const changed = fieldNames
    .filter((name) => JSON.stringify(merged[name]) !== JSON.stringify(current[name]))
    .map(snakeCase);
  await checkConflicts(tx, merged, current.id);
  try {
    const result = await tx.query<ApiRow>(
      `UPDATE apis SET slug = $2, name = $3, hosts = $4, path_prefix = $5, upstreams = $6, timeout_ms = $7,
         failure_policy = $8, metered_metrics = $9, plugins = $10::jsonb, updated_at = now()
       WHERE id = $1 RETURNING ${columns}`,
      [
        current.id,
        merged.slug,
        merged.name,
        merged.hosts,
        merged.pathPrefix,
        merged.upstreams,
        merged.timeoutMs,
        merged.failurePolicy,
        merged.meteredMetrics,
        JSON.stringify(merged.plugins),
      ],
    );
    await syncRoutingClaims(tx, current.id, merged);
    return { api: toApi(result.rows[0] as ApiRow), configVersion, changed };
  } catch (error) {
    throw conflictError(error);
  }
}

/**
 * Deletes an API. API keys limited to it (api_key_apis, live ones) make this `409 api_in_use`
 * unless `force`: then each such key loses this API, and a key left with no API is revoked rather
 * than widened to every API. Answers the keys revoked (ids, and lookup ids for the gateways' key
 * caches). Call inside a transaction.
 */
export async function deleteApi(
  tx: Queryable,
  idOrSlug: string,
  options: { force?: boolean } = {},
): Promise<ApiChange & { revokedKeyIds: string[]; revokedKeyLookupIds: string[] }> {
  const configVersion = await bumpConfigVersion(tx);
  const api = await findApiOrFail(tx, idOrSlug);
  const limited = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM api_key_apis l JOIN api_keys k ON k.id = l.api_key_id
     WHERE l.api_id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`,
    [api.id],
  );
  const keys = Number(limited.rows[0]?.n ?? 0);
  if (keys > 0 && !options.force) {
    throw new TollgateError('api_in_use', `${keys} live API key(s) are limited to the API ${api.slug}`, {
      details: { keys },
      hint: 'change or revoke those keys first, or delete with force (keys left with no API are revoked)',
    });
  }
  const revoked = await tx.query<{ id: string; lookup_id: string }>(
    `UPDATE api_keys k SET revoked_at = now()
     WHERE k.revoked_at IS NULL
       AND EXISTS (SELECT 1 FROM api_key_apis l WHERE l.api_key_id = k.id AND l.api_id = $1)
       AND NOT EXISTS (SELECT 1 FROM api_key_apis o WHERE o.api_key_id = k.id AND o.api_id <> $1)
     RETURNING k.id, k.lookup_id`,
    [api.id],
  );
  await tx.query('DELETE FROM api_key_apis WHERE api_id = $1', [api.id]);
  await tx.query('DELETE FROM apis WHERE id = $1', [api.id]);
  const rows = [...revoked.rows].sort((a, b) => a.id.localeCompare(b.id));
  return {
    api,
    configVersion,
    revokedKeyIds: rows.map((row) => row.id),
    revokedKeyLookupIds: rows.map((row) => row.lookup_id),
  };
}
