import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import { defineRoute } from '../http/route.js';
import { callerAudit } from '../identity/authenticate.js';
import { loadTeamPlanTerms } from '../plans/team-plan.js';
import type { Database } from '../storage/database.js';
import { teamAccess } from '../teams/team-routes.js';
import { type AlertFiring, listAlertFirings } from './alert-evaluation.js';
import {
  type AlertThreshold,
  alertCurrency,
  clearAlertThresholds,
  listAlertThresholds,
  majorAmount,
  setAlertThresholds,
} from './alert-thresholds.js';

export interface AlertRouteOptions {
  database: Database;
  signingKey: Buffer;
}

const setBody = z.strictObject({
  quota: z
    .array(
      z.strictObject({
        metric: z.string().describe("A metric the team's plan has a quota for: calls, bandwidth, storage or custom"),
        percent: z.number().describe('A whole percentage of the included units, 1 to 100'),
      }),
    )
    .max(20)
    .default([]),
  spend: z
    .array(
      z.strictObject({
        amount: z.string().describe('Overage charges so far, in the team\'s currency, e.g. "50.00"'),
      }),
    )
    .max(20)
    .default([]),
});

const thresholdsSchema = z.object({
  team_id: z.string(),
  currency: z.string().describe("The team's currency, which spend thresholds are in"),
  quota: z.array(z.object({ key: z.string(), metric: z.string(), percent: z.number().int() })),
  spend: z.array(
    z.object({ key: z.string(), amount: z.string(), amount_minor: z.number().int(), currency: z.string() }),
  ),
});

const firingSchema = z.object({
  id: z.string(),
  key: z.string(),
  kind: z.enum(['quota', 'spend']),
  metric: z.string().nullable(),
  percent: z.number().int().nullable(),
  amount: z.string().nullable().describe('spend: the threshold, major units'),
  currency: z.string().nullable(),
  used: z.number().int().nullable().describe('quota: units used when it fired'),
  included: z.number().int().nullable(),
  spend: z.string().nullable().describe('spend: overage charges so far when it fired, major units'),
  period_start: z.string(),
  period_end: z.string(),
  events: z.array(z.string()).describe('The webhook events it enqueued'),
  emails_sent: z.number().int(),
  fired_at: z.string(),
});

function thresholdsBody(teamId: string, currency: string, thresholds: AlertThreshold[]) {
  return {
    team_id: teamId,
    currency,
    quota: thresholds.flatMap((threshold) =>
      threshold.kind === 'quota' ? [{ key: threshold.key, metric: threshold.metric, percent: threshold.percent }] : [],
    ),
    spend: thresholds.flatMap((threshold) =>
      threshold.kind === 'spend'
        ? [
            {
              key: threshold.key,
              amount: majorAmount(threshold.amountMinor, threshold.currency),
              amount_minor: Number(threshold.amountMinor),
              currency: threshold.currency,
            },
          ]
        : [],
    ),
  };
}

function firingBody(firing: AlertFiring): z.infer<typeof firingSchema> {
  const { threshold } = firing;
  return {
    id: firing.id,
    key: threshold.key,
    kind: threshold.kind,
    metric: threshold.kind === 'quota' ? threshold.metric : null,
    percent: threshold.kind === 'quota' ? threshold.percent : null,
    amount: threshold.kind === 'spend' ? majorAmount(threshold.amountMinor, threshold.currency) : null,
    currency: threshold.kind === 'spend' ? threshold.currency : null,
    used: firing.used === null ? null : Number(firing.used),
    included: firing.included === null ? null : Number(firing.included),
    spend:
      firing.spendMinor === null || threshold.kind !== 'spend'
        ? null
        : majorAmount(firing.spendMinor, threshold.currency),
    period_start: firing.periodStart.toISOString(),
    period_end: firing.periodEnd.toISOString(),
    events: firing.eventTypes,
    emails_sent: firing.emailsSent,
    fired_at: firing.firedAt.toISOString(),
  };
}

/** A team's usage alert thresholds and what fired (docs/alerts.md). */
export function alertRoutes(options: AlertRouteOptions) {
  const { database } = options;
  const currencyOf = async (teamId: string) => {
    const terms = await loadTeamPlanTerms(database, teamId);
    return terms ? alertCurrency(terms) : 'USD';
  };
  return [
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/alerts',
      operationId: 'listUsageAlerts',
      summary: "The team's usage alert thresholds (usage:read)",
      tags: ['alerts'],
      responses: { 200: { description: 'The thresholds', schema: thresholdsSchema } },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'usage:read');
        ctx.body = thresholdsBody(team.id, await currencyOf(team.id), await listAlertThresholds(database, team.id));
      },
    }),
    defineRoute({
      method: 'put',
      path: '/v1/teams/:team/alerts',
      operationId: 'setUsageAlerts',
      summary: "Replace the team's usage alert thresholds (alerts:write, team admins)",
      description:
        "quota: a whole percentage (1 to 100) of what the team's plan includes of a metric it has a quota for; spend: an amount of overage charges so far in the team's currency (the base fee excluded). Each threshold fires once per billing period, by email to the team's owner and admins and by webhook (quota.threshold_reached; quota.exhausted too at 100% of a capped quota). The whole set is replaced; an empty set clears it. Refused input writes nothing.",
      tags: ['alerts'],
      body: setBody,
      responses: { 200: { description: 'The thresholds now set', schema: thresholdsSchema } },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'alerts:write');
        const thresholds = await database.transaction(async (tx) => {
          const set = await setAlertThresholds(tx, {
            teamId: team.id,
            userId: caller.user.id,
            quota: body.quota,
            spend: body.spend,
          });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'alerts.set',
              outcome: 'success',
              targetType: 'team',
              targetId: team.id,
              teamId: team.id,
              details: { thresholds: set.map((threshold) => threshold.key) },
            }),
          );
          return set;
        });
        ctx.body = thresholdsBody(team.id, await currencyOf(team.id), thresholds);
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/v1/teams/:team/alerts',
      operationId: 'clearUsageAlerts',
      summary: 'Remove every usage alert threshold of the team (alerts:write); the history stays',
      tags: ['alerts'],
      responses: { 200: { description: 'How many were removed', schema: z.object({ removed: z.number().int() }) } },
      handler: async (ctx) => {
        const { caller, team } = await teamAccess(ctx, options, 'alerts:write');
        const removed = await database.transaction(async (tx) => {
          const count = await clearAlertThresholds(tx, team.id);
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'alerts.cleared',
              outcome: 'success',
              targetType: 'team',
              targetId: team.id,
              teamId: team.id,
              details: { removed: count },
            }),
          );
          return count;
        });
        ctx.body = { removed };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/alerts/history',
      operationId: 'listUsageAlertFirings',
      summary: 'The usage alerts that fired, newest first, the last 100 (usage:read)',
      tags: ['alerts'],
      responses: {
        200: { description: 'Firings', schema: z.object({ firings: z.array(firingSchema) }) },
      },
      handler: async (ctx) => {
        const { team } = await teamAccess(ctx, options, 'usage:read');
        ctx.body = { firings: (await listAlertFirings(database, { teamId: team.id })).map(firingBody) };
      },
    }),
  ];
}
