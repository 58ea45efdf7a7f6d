import { CliError, exitCodes } from './cli-error.js';

/** An API key as /v1/teams/:team/keys answers it (never its secret, except `key` once). */
export interface ApiKeyBody {
  id: string;
  name: string | null;
  prefix: string;
  mode: 'live' | 'test';
  owner_user_id: string | null;
  apis: { id: string; slug: string }[];
  methods: string[];
  allowed_cidrs: string[];
  limits: Record<string, number>;
  created_at: string;
  expires_at: string | null;
  expired: boolean;
  revoked_at: string | null;
  rotated_at: string | null;
  previous_secret_expires_at: string | null;
  last_used_at: string | null;
  key?: string;
}

/** `revoked`, `expired` or `active`. */
export function keyState(key: ApiKeyBody): string {
  if (key.revoked_at) return 'revoked';
  if (key.expired) return 'expired';
  return 'active';
}

/** The `label value` lines of `tollgate keys show` (and after create and rotate). */
export function keyFields(key: ApiKeyBody): [string, string][] {
  const limits = Object.entries(key.limits).map(([window, calls]) => `${window}=${calls}`);
  return [
    ['id', key.id],
    ['name', key.name ?? ''],
    ['prefix', key.prefix],
    ['mode', key.mode],
    ['state', keyState(key)],
    ['owner', key.owner_user_id ?? 'the team'],
    ['apis', key.apis.length > 0 ? key.apis.map((api) => api.slug).join(', ') : 'all'],
    ['methods', key.methods.length > 0 ? key.methods.join(', ') : 'all'],
    ['allowed ips', key.allowed_cidrs.length > 0 ? key.allowed_cidrs.join(', ') : 'anywhere'],
    ['limits', limits.length > 0 ? limits.join(', ') : "the plan's"],
    ['created', key.created_at],
    ['expires', key.expires_at ?? 'never'],
    ['rotated', key.rotated_at ?? 'never'],
    ['old secret until', key.previous_secret_expires_at ?? ''],
    ['revoked', key.revoked_at ?? ''],
    ['last used', key.last_used_at ?? 'never'],
  ];
}

/** `90d`, `24h`, `30m`, `45s` (and `0` when `allowZero`): checked here so a typo exits 2 before any call. */
export function durationFlag(flag: string, value: string, options: { allowZero: boolean }): string {
  const text = value.trim();
  if (/^\d{1,6}[smhd]$/.test(text) || (options.allowZero && text === '0')) return text;
  throw new CliError('usage_error', `--${flag} must be a whole number with s, m, h or d (got "${value}")`, {
    hint: options.allowZero ? `e.g. --${flag} 24h, or --${flag} 0 for none` : `e.g. --${flag} 90d`,
    exitCode: exitCodes.usage,
  });
}
