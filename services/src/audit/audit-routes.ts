import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import type { Database } from '../storage/database.js';
import { type AuditEntry, listAuditEntries, verifyAuditChain } from './audit-log.js';

const entrySchema = z.object({
  seq: z.number().int(),
  id: z.string(),
  occurred_at: z.string(),
  actor_user_id: z.string().nullable(),
  actor_label: z.string(),
  action: z.string(),
  outcome: z.enum(['success', 'denied', 'failure']),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  team_id: z.string().nullable(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  request_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

const verificationSchema = z.object({
  ok: z.boolean(),
  entries: z.number().int().describe('Entries that verified'),
  broken_at: z.number().int().optional().describe('Sequence number of the first broken entry'),
  reason: z.string().optional(),
});

function parseDate(value: string, name: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new TollgateError('validation_failed', `${name} must be an ISO 8601 time, like 2026-11-24T12:00:00Z`);
  }
  return date;
}

/** The installation-wide audit log, for operators (team admins get their team's view with teams). */
export function auditRoutes(options: { database: Database; signingKey: Buffer }) {
  const { database, signingKey } = options;
  return [
    defineRoute({
      method: 'get',
      path: '/v1/audit',
      operationId: 'listAuditEntries',
      summary: 'List audit entries, newest first',
      description:
        'Query parameters: since, until (ISO times), actor (user id), action (exact, or a prefix ending in *), limit (1-1000, default 100), before (a seq, for the next page). Needs audit:verify (operators).',
      tags: ['audit'],
      responses: { 200: { description: 'Entries', schema: z.object({ entries: z.array(entrySchema) }) } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        await authorize(ctx, { database, caller, permission: 'audit:verify' });
        const query = ctx.query as Record<string, string | undefined>;
        const entries = await listAuditEntries(database, {
          ...(query.since ? { since: parseDate(query.since, 'since') } : {}),
          ...(query.until ? { until: parseDate(query.until, 'until') } : {}),
          ...(query.actor ? { actorUserId: query.actor } : {}),
          ...(query.action ? { action: query.action } : {}),
          ...(query.limit ? { limit: Number(query.limit) } : {}),
          ...(query.before ? { beforeSeq: Number(query.before) } : {}),
        });
        ctx.body = { entries: entries.map(toBody) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/audit/verify',
      operationId: 'verifyAuditChain',
      summary: 'Verify the hash chain of the whole audit log',
      description:
        'Answers ok=false with the first broken entry when any entry was edited or deleted. Needs audit:verify.',
      tags: ['audit'],
      responses: { 200: { description: 'The verification', schema: verificationSchema } },
      handler: async (ctx) => {
        const caller = await authenticate(ctx, { database, signingKey });
        await authorize(ctx, { database, caller, permission: 'audit:verify' });
        const result = await verifyAuditChain(database);
        ctx.body = result.ok
          ? { ok: true, entries: result.entries }
          : { ok: false, entries: result.entries, broken_at: result.brokenAt, reason: result.reason };
      },
    }),
  ];
}

function toBody(entry: AuditEntry): z.infer<typeof entrySchema> {
  return {
    seq: entry.seq,
    id: entry.id,
    occurred_at: entry.occurredAt.toISOString(),
    actor_user_id: entry.actorUserId,
    actor_label: entry.actorLabel,
    action: entry.action,
    outcome: entry.outcome,
    target_type: entry.targetType,
    target_id: entry.targetId,
    team_id: entry.teamId,
    ip: entry.ip,
    user_agent: entry.userAgent,
    request_id: entry.requestId,
    details: entry.details,
  };
}
