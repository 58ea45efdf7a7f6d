import { Flags } from '@oclif/core';
import { CliError, exitCodes } from './cli-error.js';
import type { Column } from './output/table.js';

/** An API as `/v1/apis` answers it; the fields after `updated_at` only for operators. */
export interface ApiDocument {
  id: string;
  slug: string;
  name: string;
  hosts: string[];
  path_prefix: string | null;
  created_at: string;
  updated_at: string;
  upstreams?: string[];
  timeout_ms?: number;
  failure_policy?: 'fail-open' | 'fail-closed';
  metered_metrics?: string[];
  plugins?: PluginEntry[];
  created_by_user_id?: string | null;
}

const units = { ms: 1, s: 1_000, m: 60_000 } as const;

/** `30s`, `1500ms`, `2m` -> milliseconds; a usage error (exit 2) otherwise. */
export function parseTimeout(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim());
  const value = match ? Number(match[1]) * units[match[2] as keyof typeof units] : Number.NaN;
  if (!Number.isInteger(value)) {
    throw new CliError('usage_error', `--timeout must be a duration like 30s, 1500ms or 2m (got "${text}")`, {
      exitCode: exitCodes.usage,
    });
  }
  return value;
}

/** `30000` -> `30s`, for people. */
export function formatTimeout(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

/** The flags `apis create` and `apis update` share; on update each replaces what it names. */
export const apiFlags = {
  name: Flags.string({ description: 'Name shown to people (1 to 200 characters)' }),
  upstream: Flags.string({
    description: 'Upstream base URL, http or https (repeat for several, tried round-robin)',
    multiple: true,
  }),
  host: Flags.string({ description: 'Host name routed to this API whatever the path (repeatable)', multiple: true }),
  'path-prefix': Flags.string({ description: 'A path prefix routed to this API besides /<slug>, like /weather/v1' }),
  timeout: Flags.string({ description: 'How long the upstream may take: 30s, 1500ms, 2m (100ms to 5m)' }),
  'failure-policy': Flags.string({
    description: 'When the counter store (Redis) is down: serve and count in process, or answer 503',
    options: ['fail-open', 'fail-closed'],
  }),
  metric: Flags.string({
    description: 'What the gateway meters (repeatable) [default: calls and bandwidth]',
    options: ['calls', 'bandwidth'],
    multiple: true,
  }),
  plugin: Flags.string({
    description:
      'Plugin to run, in order: NAME or NAME=\'{"json":"config"}\' (repeatable; replaces the list; `tollgate plugins list` names them)',
    multiple: true,
  }),
};

type PluginEntry = { name: string; config: Record<string, unknown> };

/**
 * `cors` or `cors={"origins":["https://app.example"]}` -> a plugin list entry. Only the JSON is
 * checked here (a usage error, exit 2, before any call); the name and config are the API's to judge.
 */
export function parsePluginFlag(text: string): PluginEntry {
  const split = text.indexOf('=');
  const name = (split === -1 ? text : text.slice(0, split)).trim();
  const usage = (problem: string) =>
    new CliError('usage_error', `--plugin ${problem} (got "${text}")`, {
      hint: `pass --plugin NAME or --plugin 'NAME={"field":"value"}'`,
      exitCode: exitCodes.usage,
    });
  if (name === '') throw usage('needs a plugin name');
  if (split === -1) return { name, config: {} };
  let config: unknown;
  try {
    config = JSON.parse(text.slice(split + 1));
  } catch (error) {
    throw usage(`config is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw usage('config must be a JSON object, like {"max_bytes":1048576}');
  }
  return { name, config: config as Record<string, unknown> };
}

/** A plugin list entry as people read it, in the form --plugin takes. */
export function formatPlugin(plugin: PluginEntry): string {
  return Object.keys(plugin.config).length === 0 ? plugin.name : `${plugin.name}=${JSON.stringify(plugin.config)}`;
}

type ApiFlagValues = {
  name?: string | undefined;
  upstream?: string[] | undefined;
  host?: string[] | undefined;
  'path-prefix'?: string | undefined;
  timeout?: string | undefined;
  'failure-policy'?: string | undefined;
  metric?: string[] | undefined;
  plugin?: string[] | undefined;
};

/** The JSON body fields the flags set, leaving out those not given. */
export function apiBody(flags: ApiFlagValues): Record<string, unknown> {
  return {
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.upstream === undefined ? {} : { upstreams: flags.upstream }),
    ...(flags.host === undefined ? {} : { hosts: flags.host }),
    ...(flags['path-prefix'] === undefined ? {} : { path_prefix: flags['path-prefix'] }),
    ...(flags.timeout === undefined ? {} : { timeout_ms: parseTimeout(flags.timeout) }),
    ...(flags['failure-policy'] === undefined ? {} : { failure_policy: flags['failure-policy'] }),
    ...(flags.metric === undefined ? {} : { metered_metrics: flags.metric }),
    ...(flags.plugin === undefined ? {} : { plugins: flags.plugin.map(parsePluginFlag) }),
  };
}

/** Where the gateway serves an API: /<slug>, its path prefix, its hosts. */
export function routesOf(api: ApiDocument): string {
  return [
    `/${api.slug}`,
    ...(api.path_prefix ? [api.path_prefix] : []),
    ...api.hosts.map((host) => `host ${host}`),
  ].join(', ');
}

/** One API as `label value` lines; the operator fields only when the API answered them. */
export function apiFields(api: ApiDocument): [string, string][] {
  const fields: [string, string][] = [
    ['name', api.name],
    ['slug', api.slug],
    ['id', api.id],
    ['hosts', api.hosts.join(', ')],
    ['path prefix', api.path_prefix ?? ''],
  ];
  if (api.upstreams) fields.push(['upstreams', api.upstreams.join(', ')]);
  if (api.timeout_ms !== undefined) fields.push(['timeout', formatTimeout(api.timeout_ms)]);
  if (api.failure_policy) fields.push(['failure policy', api.failure_policy]);
  if (api.metered_metrics) fields.push(['metered', api.metered_metrics.join(', ')]);
  // `; ` between plugins: a config's JSON has commas of its own.
  if (api.plugins) fields.push(['plugins', api.plugins.map(formatPlugin).join('; ')]);
  fields.push(['created', api.created_at], ['updated', api.updated_at]);
  return fields;
}

export const apiColumns: Column<ApiDocument>[] = [
  { header: 'slug', value: (api) => api.slug },
  { header: 'name', value: (api) => api.name },
  { header: 'hosts', value: (api) => api.hosts.join(',') },
  { header: 'path prefix', value: (api) => api.path_prefix ?? '' },
];

export const operatorApiColumns: Column<ApiDocument>[] = [
  ...apiColumns,
  { header: 'upstreams', value: (api) => (api.upstreams ?? []).join(',') },
  { header: 'timeout', value: (api) => (api.timeout_ms === undefined ? '' : formatTimeout(api.timeout_ms)) },
  { header: 'policy', value: (api) => api.failure_policy ?? '' },
];
