import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import { meteredPriceSchema } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate, type Caller, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import { can } from '../identity/permissions.js';
import type { Database } from '../storage/database.js';
import { archivePlan, createPlan, findPlan, isPlanSlug, listPlans, type Plan, updatePlan } from './plan-catalog.js';
import { planCreateSchema, planUpdateSchema } from './plan-schemas.js';
import { seedPlans } from './plan-seed.js';

export interface PlanRouteOptions {
  database: Database;
  signingKey: Buffer;
}

const rateLimitsSchema = z.object({
  per_second: z.number().int().nullable(),
  per_minute: z.number().int().nullable(),
  per_hour: z.number().int().nullable(),
  per_day: z.number().int().nullable(),
});

const planDocumentSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    version: z.number().int(),
    latest_version: z.number().int(),
    name: z.string(),
    description: z.string(),
    is_default: z.boolean(),
    trial_days: z.number().int(),
    prices: z.array(
      z.object({
        currency: z.string(),
        interval: z.enum(['month', 'year']),
        amount: z.string().describe('major units with the currency places, e.g. "49.00"'),
        amount_minor: z.number().int().describe('minor units, e.g. cents'),
        source: z.enum(['explicit', 'derived']),
      }),
    ),
    annual_discount_percent: z.string().nullable(),
    included: z.record(z.string(), z.number().int().nullable()),
    overage_allowed: z.boolean(),
    overage: z.record(z.string(), z.record(z.string(), meteredPriceSchema)),
    rate_limits: rateLimitsSchema,
    entitlements: z.record(z.string(), z.union([z.boolean(), z.number(), z.string()])),
    archived_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    subscribers: z.number().int().optional(),
    subscribers_all_versions: z.number().int().optional(),
  })
  .describe('A plan version; subscribers and subscribers_all_versions only for plans:manage (operators)');

function planBody(plan: Plan, operator: boolean) {
  return {
    id: plan.id,
    slug: plan.slug,
    version: plan.version,
    latest_version: plan.latestVersion,
    name: plan.name,
    description: plan.description,
    is_default: plan.isDefault,
    trial_days: plan.trialDays,
    prices: plan.prices.map((price) => ({
      currency: price.currency,
      interval: price.interval,
      amount: price.amount,
      amount_minor: price.amountMinor,
      source: price.source,
    })),
    annual_discount_percent: plan.annualDiscountPercent,
    included: plan.included,
    overage_allowed: plan.overageAllowed,
    overage: plan.overage,
    rate_limits: {
      per_second: plan.rateLimits.perSecond,
      per_minute: plan.rateLimits.perMinute,
      per_hour: plan.rateLimits.perHour,
      per_day: plan.rateLimits.perDay,
    },
    entitlements: plan.entitlements,
    archived_at: plan.archivedAt?.toISOString() ?? null,
    created_at: plan.createdAt.toISOString(),
    updated_at: plan.updatedAt.toISOString(),
    ...(operator ? { subscribers: plan.subscribers, subscribers_all_versions: plan.subscribersAllVersions } : {}),
  };
}

const params = (ctx: Context) => (ctx as unknown as { params: Record<string, string> }).params;

function notFound(slug: string): TollgateError {
  return new TollgateError('not_found', `no plan ${slug}`, { hint: 'tollgate plans list shows them' });
}

/** `?version=N`: a positive whole number, or absent (the newest). */
function versionQuery(ctx: Context): number | undefined {
  const value = ctx.query.version;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[1-9]\d{0,8}$/.test(value)) {
    throw new TollgateError('validation_failed', 'version: a version number such as 1 or 2');
  }
  return Number(value);
}

function booleanQuery(ctx: Context, name: string): boolean {
  const value = ctx.query[name];
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw new TollgateError('validation_failed', `${name}: use ${name}=true or leave it out`);
}

/**
 * The plan catalog: everyone signed in reads it (teams choose plans from it); operators
 * (`plans:manage`) write it. Each write is one transaction with its audit entry.
 */
export function planRoutes(options: PlanRouteOptions) {
  const { database } = options;

  const isOperator = (caller: Caller) =>
    can({ userId: caller.user.id, isOperator: caller.user.installationRole === 'admin' }, 'plans:manage');

  const operatorCaller = async (ctx: Context) => {
    const caller = await authenticate(ctx, options);
    await authorize(ctx, { database, caller, permission: 'plans:manage' });
    return caller;
  };

  /** A slug from the path that cannot name a plan is a plain 404, like an unknown one. */
  const slugParam = (ctx: Context) => {
    const slug = (params(ctx).plan ?? '').toLowerCase();
    if (!isPlanSlug(slug)) throw notFound(slug);
    return slug;
  };

  return [
    defineRoute({
      method: 'get',
      path: '/v1/plans',
      operationId: 'listPlans',
      summary: 'The plans on offer: the newest version of each, by slug',
      description: 'Archived plans only with ?archived=true. Operators (plans:manage) also see subscriber counts.',
      tags: ['plans'],
      responses: { 200: { description: 'Plans', schema: z.object({ plans: z.array(planDocumentSchema) }) } },
      handler: async (ctx) => {
        const includeArchived = booleanQuery(ctx, 'archived');
        const caller = await authenticate(ctx, options);
        const operator = isOperator(caller);
        const plans = await listPlans(database, { includeArchived });
        ctx.body = { plans: plans.map((plan) => planBody(plan, operator)) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/plans/:plan',
      operationId: 'getPlan',
      summary: 'A plan by slug: its newest version, or ?version=N',
      description: 'With its prices (annual ones derived from the discount marked source "derived").',
      tags: ['plans'],
      responses: { 200: { description: 'The plan version', schema: planDocumentSchema } },
      handler: async (ctx) => {
        const version = versionQuery(ctx);
        const caller = await authenticate(ctx, options);
        const slug = slugParam(ctx);
        const plan = await findPlan(database, slug, version === undefined ? {} : { version });
        if (!plan) {
          if (version === undefined) throw notFound(slug);
          throw new TollgateError('not_found', `plan ${slug} has no version ${version}`, {
            hint: `tollgate plans show ${slug} shows its newest version`,
          });
        }
        ctx.body = planBody(plan, isOperator(caller));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/plans',
      operationId: 'createPlan',
      summary: 'Create a plan (plans:manage, operators)',
      description:
        'Version 1 of a new slug. Amounts are decimal strings in major units; an annual price is explicit or derived from annual_discount_percent.',
      tags: ['plans'],
      body: planCreateSchema,
      responses: { 201: { description: 'Created', schema: planDocumentSchema } },
      handler: async (ctx, { body }) => {
        const caller = await operatorCaller(ctx);
        const plan = await database.transaction(async (tx) => {
          const created = await createPlan(tx, body, { createdByUserId: caller.user.id });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'plan.created',
              outcome: 'success',
              targetType: 'plan',
              targetId: created.id,
              details: { slug: created.slug, version: created.version },
            }),
          );
          return created;
        });
        ctx.status = 201;
        ctx.body = planBody(plan, true);
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/v1/plans/:plan',
      operationId: 'updatePlan',
      summary: 'Change a plan (plans:manage, operators)',
      description:
        'Send only the fields to change: prices, included, overage and entitlements replace the whole list or map; rate_limits changes the windows it names. When live subscriptions use the newest version the change becomes a new version and they stay on theirs; otherwise the newest version changes in place. An archived plan answers 409 plan_archived.',
      tags: ['plans'],
      body: planUpdateSchema,
      responses: {
        200: {
          description: 'The plan after the change',
          schema: z.object({
            plan: planDocumentSchema,
            new_version: z.boolean(),
            from_version: z.number().int(),
            changed: z.array(z.string()),
          }),
        },
      },
      handler: async (ctx, { body }) => {
        const caller = await operatorCaller(ctx);
        const slug = slugParam(ctx);
        const result = await database.transaction(async (tx) => {
          const updated = await updatePlan(tx, slug, body, { updatedByUserId: caller.user.id });
          if (updated.changed.length > 0) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'plan.updated',
                outcome: 'success',
                targetType: 'plan',
                targetId: updated.plan.id,
                details: {
                  slug: updated.plan.slug,
                  version: updated.plan.version,
                  from_version: updated.fromVersion,
                  new_version: updated.newVersion,
                  changed: updated.changed,
                },
              }),
            );
          }
          return updated;
        });
        ctx.body = {
          plan: planBody(result.plan, true),
          new_version: result.newVersion,
          from_version: result.fromVersion,
          changed: result.changed,
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/plans/:plan/archive',
      operationId: 'archivePlan',
      summary: 'Archive a plan (plans:manage, operators)',
      description:
        'No new subscriptions to any version; live subscriptions keep theirs. The default plan answers 409 plan_is_default. Archiving an archived plan changes nothing.',
      tags: ['plans'],
      responses: { 200: { description: 'The archived plan (newest version)', schema: planDocumentSchema } },
      handler: async (ctx) => {
        const caller = await operatorCaller(ctx);
        const slug = slugParam(ctx);
        const plan = await database.transaction(async (tx) => {
          const result = await archivePlan(tx, slug);
          if (result.archived) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'plan.archived',
                outcome: 'success',
                targetType: 'plan',
                targetId: result.plan.id,
                details: { slug: result.plan.slug, version: result.plan.version },
              }),
            );
          }
          return result.plan;
        });
        ctx.body = planBody(plan, true);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/plans/seed',
      operationId: 'seedPlans',
      summary: 'Create the example plans Basic, Pro and Enterprise (plans:manage, operators)',
      description:
        'Creates those whose slug (basic, pro, enterprise) no plan has; leaves the others as they are, so seeding twice changes nothing.',
      tags: ['plans'],
      responses: {
        200: {
          description: 'What was created and what already existed',
          schema: z.object({
            created: z.array(z.string()),
            existing: z.array(z.string()),
            plans: z.array(planDocumentSchema),
          }),
        },
      },
      handler: async (ctx) => {
        const caller = await operatorCaller(ctx);
        const result = await database.transaction(async (tx) => {
          const seeded = await seedPlans(tx, { createdByUserId: caller.user.id });
          for (const plan of seeded.created) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'plan.created',
                outcome: 'success',
                targetType: 'plan',
                targetId: plan.id,
                details: { slug: plan.slug, version: plan.version, seeded: true },
              }),
            );
          }
          return seeded;
        });
        const plans = [...result.created, ...result.existing].sort((a, b) => a.slug.localeCompare(b.slug));
        ctx.body = {
          created: result.created.map((plan) => plan.slug),
          existing: result.existing.map((plan) => plan.slug),
          plans: plans.map((plan) => planBody(plan, true)),
        };
      },
    }),
  ];
}
