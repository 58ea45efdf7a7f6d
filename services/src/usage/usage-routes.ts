import type { Context } from 'koa';
import { z } from 'zod';
import { findApi } from '../apis/apis.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import { loadQuotaStatus, type QuotaStatus } from '../plans/quota-status.js';
import type { Database } from '../storage/database.js';
import { teamAccess } from '../teams/team-routes.js';
import { findTeam } from '../teams/teams.js';
import type { UsageCounts } from './usage-counter-store.js';
import { metricPattern, readMetricDays, reportUsage, type UsageEvent } from './usage-reports.js';
import { readUsage } from './usage-rollups.js';

export interface UsageRouteOptions {
  database: Database;
  signingKey: Buffer;
}

const reportSchema = z.strictObject({
  team: z.string().min(1).max(100).describe('Team id or slug'),
  metric: z.string().regex(metricPattern).describe('e.g. storage_bytes, emails_sent'),
  quantity: z
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .describe('A count or a reading; never negative (corrections are credits, in billing)'),
  at: z.iso.datetime({ offset: true }).optional().describe('When the usage happened; now when absent; within 30 days'),
  idempotency_key: z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, 'use 1 to 255 printable ASCII characters, no spaces')
    .describe('Unique per team and event; kept at least 30 days'),
});

const reportBody = z.union([reportSchema, z.strictObject({ events: z.array(reportSchema).min(1).max(100) })]);

const eventSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  metric: z.string(),
  quantity: z.number().int(),
  at: z.string(),
  idempotency_key: z.string(),
  created_at: z.string(),
});

const eventBody = (event: UsageEvent) => ({
  id: event.id,
  team_id: event.teamId,
  metric: event.metric,
  quantity: event.quantity,
  at: event.at.toISOString(),
  idempotency_key: event.idempotencyKey,
  created_at: event.createdAt.toISOString(),
});

const countsSchema = z.object({
  calls: z.number().int(),
  request_bytes: z.number().int(),
  response_bytes: z.number().int(),
  bandwidth_bytes: z.number().int().describe('request_bytes + response_bytes'),
  overage_calls: z.number().int(),
  status: z.object({
    '2xx': z.number().int(),
    '3xx': z.number().int(),
    '4xx': z.number().int(),
    '5xx': z.number().int(),
  }),
  latency_ms_avg: z.number().nullable(),
  latency_ms_max: z.number().nullable(),
});

const countsBody = (counts: UsageCounts) => ({
  calls: counts.calls,
  request_bytes: counts.requestBytes,
  response_bytes: counts.responseBytes,
  bandwidth_bytes: counts.requestBytes + counts.responseBytes,
  overage_calls: counts.overageCalls,
  status: { '2xx': counts.status2xx, '3xx': counts.status3xx, '4xx': counts.status4xx, '5xx': counts.status5xx },
  latency_ms_avg: counts.calls > 0 ? Math.round(counts.latencyUsSum / counts.calls) / 1000 : null,
  latency_ms_max: counts.calls > 0 ? counts.latencyUsMax / 1000 : null,
});

const usageSchema = z.object({
  team: z.string(),
  team_id: z.string(),
  from: z.string(),
  to: z.string(),
  group_by: z.enum(['hour', 'day']),
  api: z.string().nullable(),
  key: z.string().nullable(),
  periods: z.array(countsSchema.extend({ start: z.string() })),
  totals: countsSchema,
  metrics: z
    .array(
      z.object({
        day: z.string(),
        metric: z.string(),
        events: z.number().int(),
        sum: z.number().int(),
        max: z.number().int(),
        last: z.number().int(),
        last_at: z.string(),
      }),
    )
    .describe('Metrics reported through POST /v1/usage, per UTC day (for the whole team: api and key do not apply)'),
  quota: z
    .object({
      plan: z.string().describe("The plan's slug ('none' when there is no plan at all)"),
      limit: z.number().int().nullable().describe('Calls included per billing period; null: no quota'),
      used_in_period: z.number().int().describe('Calls served in the period so far, overage included'),
      remaining: z.number().int().nullable().describe('limit - used_in_period, never below 0; null: no quota'),
      overage_calls: z.number().int().describe('Calls served beyond the quota in the period'),
      overage_allowed: z.boolean().describe('Beyond the quota: served as overage (true) or refused (429, false)'),
      period_start: z.string(),
      period_end: z.string().describe('Exclusive'),
    })
    .nullable()
    .describe(
      "The team's call quota in its current billing period (calendar months from the billing anchor, UTC), whatever from and to say; from the rollups, so it trails the gateway by up to about 10 seconds",
    ),
});

const quotaBody = (quota: QuotaStatus) => ({
  plan: quota.plan,
  limit: quota.limit,
  used_in_period: quota.usedInPeriod,
  remaining: quota.remaining,
  overage_calls: quota.overageCalls,
  overage_allowed: quota.overageAllowed,
  period_start: quota.periodStart.toISOString(),
  period_end: quota.periodEnd.toISOString(),
});

/** Longest range per grouping: 31 days of hours, 400 of days. */
const maxRangeMs = { hour: 31 * 86_400_000, day: 400 * 86_400_000 } as const;

function parseTime(value: string, name: string): Date {
  // A bare date (2026-06-01) is midnight UTC.
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(date.getTime())) {
    throw new TollgateError(
      'validation_failed',
      `${name}: use an ISO 8601 date or time, like 2026-06-01 or 2026-06-01T12:00:00Z`,
    );
  }
  return date;
}

function usageQuery(ctx: Context) {
  const query = ctx.query as Record<string, string | string[] | undefined>;
  const one = (name: string): string | undefined => {
    const value = query[name];
    if (Array.isArray(value)) throw new TollgateError('validation_failed', `${name}: give it once`);
    return value === '' ? undefined : value;
  };
  const groupBy = one('group_by') ?? 'day';
  if (groupBy !== 'hour' && groupBy !== 'day') {
    throw new TollgateError('validation_failed', 'group_by: use hour or day');
  }
  const now = new Date();
  const to = one('to') === undefined ? now : parseTime(one('to') as string, 'to');
  // Default: the current UTC month so far.
  const from =
    one('from') === undefined
      ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))
      : parseTime(one('from') as string, 'from');
  if (from >= to) throw new TollgateError('validation_failed', 'from: must be before to');
  if (to.getTime() - from.getTime() > maxRangeMs[groupBy]) {
    throw new TollgateError(
      'validation_failed',
      groupBy === 'hour' ? 'from: by hour, ask for at most 31 days' : 'from: by day, ask for at most 400 days',
    );
  }
  return { groupBy, from, to, api: one('api'), key: one('key') } as const;
}

/** Reported usage (operators and upstreams) and reading a team's usage (members with usage:read). */
export function usageRoutes(options: UsageRouteOptions) {
  const { database } = options;
  return [
    defineRoute({
      method: 'post',
      path: '/v1/usage',
      operationId: 'reportUsage',
      summary: 'Report usage of another metric, e.g. storage held (usage:report, operators)',
      description:
        'One event, or {"events": [...]} with up to 100, all written or none. Each idempotency_key is kept at least 30 days per team: the same key with the same body answers the original event (header Idempotent-Replayed: true when every event was a replay); with another body, 409 idempotency_conflict and nothing is written. quantity is a non-negative integer, a count or a reading: the daily rollup keeps the sum, the maximum and the latest value.',
      tags: ['usage'],
      body: reportBody,
      responses: {
        201: {
          description: 'Recorded (or replayed)',
          schema: z.union([eventSchema, z.object({ events: z.array(eventSchema) })]),
        },
      },
      handler: async (ctx, { body }) => {
        const caller = await authenticate(ctx, options);
        await authorize(ctx, { database, caller, permission: 'usage:report' });
        const batch = 'events' in body;
        const events = batch ? body.events : [body];
        const teams = new Map<string, string>();
        for (const [index, event] of events.entries()) {
          if (teams.has(event.team)) continue;
          const team = await findTeam(database, event.team);
          if (!team) throw new TollgateError('not_found', `events.${index}.team: no such team`, { details: { index } });
          teams.set(event.team, team.id);
        }
        const recorded = await reportUsage(database, {
          reportedByUserId: caller.user.id,
          reports: events.map((event) => ({
            teamId: teams.get(event.team) as string,
            metric: event.metric,
            quantity: event.quantity,
            at: event.at === undefined ? undefined : new Date(event.at),
            idempotencyKey: event.idempotency_key,
          })),
        });
        if (recorded.every((answer) => answer.replayed)) ctx.set('Idempotent-Replayed', 'true');
        ctx.status = 201;
        const first = recorded[0];
        ctx.body =
          batch || !first ? { events: recorded.map((answer) => eventBody(answer.event)) } : eventBody(first.event);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/usage',
      operationId: 'getTeamUsage',
      summary: "The team's metered calls and bandwidth by hour or day (usage:read)",
      description:
        "Query parameters: from, to (ISO dates or times; default the current UTC month so far; from is rounded down to the period), group_by (hour or day, default day; at most 31 days of hours or 400 of days), api (an API id or slug), key (an API key id). Counts reach the rollups within about 10 seconds of the calls. quota is the team's plan quota in its current billing period, whatever from and to say.",
      tags: ['usage'],
      responses: { 200: { description: 'Usage', schema: usageSchema } },
      handler: async (ctx) => {
        const query = usageQuery(ctx);
        const { team } = await teamAccess(ctx, options, 'usage:read');
        // Usage is kept by API id; an API deleted since can still be asked for by its id.
        const apiId = query.api === undefined ? undefined : ((await findApi(database, query.api))?.id ?? query.api);
        const [usage, metrics] = [
          await readUsage(database, {
            teamId: team.id,
            from: query.from,
            to: query.to,
            groupBy: query.groupBy,
            apiId,
            keyId: query.key,
          }),
          await readMetricDays(database, { teamId: team.id, from: query.from, to: query.to }),
        ];
        const quota = await loadQuotaStatus(database, team.id);
        ctx.body = {
          team: team.slug,
          team_id: team.id,
          from: query.from.toISOString(),
          to: query.to.toISOString(),
          group_by: query.groupBy,
          api: apiId ?? null,
          key: query.key ?? null,
          periods: usage.periods.map((period) => ({ start: period.start.toISOString(), ...countsBody(period.counts) })),
          totals: countsBody(usage.totals),
          metrics: metrics.map((day) => ({
            day: day.day.toISOString().slice(0, 10),
            metric: day.metric,
            events: day.events,
            sum: day.sum,
            max: day.max,
            last: day.last,
            last_at: day.lastAt.toISOString(),
          })),
          // The current billing period, whatever the range asked for; null only if the team vanished meanwhile.
          quota: quota ? quotaBody(quota) : null,
        };
      },
    }),
  ];
}
