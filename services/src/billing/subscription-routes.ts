import type { Context } from 'koa';
import { z } from 'zod';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { type Caller, callerAudit } from '../identity/authenticate.js';
import { planSlugSchema } from '../plans/plan-schemas.js';
import { teamAccess } from '../teams/team-routes.js';
import { currencySchema } from './pricing-schema.js';
import {
  cancelSubscription,
  changeSubscriptionPlan,
  findOpenCheckout,
  getSubscription,
  resumeSubscription,
  type SubscriptionActor,
  type SubscriptionServiceOptions,
  subscribe,
  subscriptionBody,
} from './subscriptions.js';

export interface SubscriptionRouteOptions extends SubscriptionServiceOptions {
  signingKey: Buffer;
}

const subscriptionSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  plan: z.string(),
  plan_version: z.number(),
  status: z.enum(['trialing', 'active', 'past_due', 'canceled', 'unpaid']),
  currency: z.string(),
  interval: z.enum(['month', 'year']),
  amount_minor: z.number().describe('the base fee per interval, in minor units (cents)'),
  current_period_start: z.string(),
  current_period_end: z.string(),
  trial_ends_at: z.string().nullable(),
  cancel_at_period_end: z.boolean(),
  canceled_at: z.string().nullable(),
  provider: z.enum(['manual', 'stripe']),
  pending_change: z
    .object({
      plan: z.string(),
      plan_version: z.number(),
      amount_minor: z.number(),
      interval: z.enum(['month', 'year']).describe('the billing interval from then on'),
      at: z.string(),
    })
    .nullable()
    .describe('a downgrade, or a switch to monthly billing, waiting for the period end'),
  past_due_at: z.string().nullable(),
  grace_ends_at: z.string().nullable().describe('past_due: served until then, then unpaid and 402 at the gateway'),
});

const checkoutSchema = z.object({
  checkout_url: z.string().describe("the provider's hosted payment page"),
  checkout_id: z.string(),
});

const subscribeBody = z.object({
  plan: planSlugSchema.describe('slug of the plan (its newest version)'),
  interval: z.enum(['month', 'year']).default('month'),
  currency: currencySchema.default('USD'),
});

function actorOf(ctx: Context, caller: Caller): SubscriptionActor {
  const { actorUserId, actorLabel, ip, userAgent, requestId } = callerAudit(ctx, caller, {
    action: 'subscription',
    outcome: 'success',
  });
  return {
    actorLabel,
    ...(actorUserId === undefined ? {} : { actorUserId }),
    ...(ip === undefined ? {} : { ip }),
    ...(userAgent === undefined ? {} : { userAgent }),
    ...(requestId === undefined ? {} : { requestId }),
  };
}

/** `/v1/teams/:team/subscription...`: see it with billing:read, change it with billing:write. */
export function subscriptionRoutes(options: SubscriptionRouteOptions) {
  const access = (ctx: Context, permission: 'billing:read' | 'billing:write') => teamAccess(ctx, options, permission);
  return [
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/subscription',
      operationId: 'subscribe',
      summary: 'Subscribe the team to a plan (billing:write)',
      description:
        'A free plan, and a plan with trial days (once per team), start at once without a card (201). Otherwise the manual provider starts it at once, and Stripe answers 202 with a Checkout URL: the subscription starts when Stripe reports the checkout completed. The first subscription fixes the team currency.',
      tags: ['billing'],
      body: subscribeBody,
      responses: {
        201: { description: 'Subscribed', schema: subscriptionSchema },
        202: { description: 'Pay at the Checkout URL to start it', schema: checkoutSchema },
        400: { description: 'validation_failed, price_not_offered' },
        404: { description: 'not_found: no such plan (or team)' },
        409: { description: 'plan_archived, currency_fixed, subscription_exists' },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await access(ctx, 'billing:write');
        const result = await subscribe(options, {
          team: { id: team.id, name: team.name },
          plan: body.plan,
          interval: body.interval,
          currency: body.currency,
          actor: actorOf(ctx, caller),
        });
        if (result.kind === 'checkout') {
          ctx.status = 202;
          ctx.body = { checkout_url: result.checkoutUrl, checkout_id: result.checkoutId };
          return;
        }
        ctx.status = 201;
        ctx.body = subscriptionBody(result.subscription);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/subscription',
      operationId: 'getSubscription',
      summary: "The team's subscription: its live one, else its last canceled one (billing:read)",
      description:
        'With `open_checkout` when the team started a Checkout that can still be paid (expired ones are not shown); a team with only an open Checkout answers 404 no_subscription with its URL in the message.',
      tags: ['billing'],
      responses: {
        200: {
          description: 'The subscription',
          schema: subscriptionSchema.extend({
            open_checkout: z
              .object({
                checkout_url: z.string(),
                checkout_id: z.string(),
                plan: z.string(),
                currency: z.string(),
                interval: z.enum(['month', 'year']),
                expires_at: z.string().nullable(),
              })
              .nullable()
              .describe('a Checkout the team started and can still pay'),
          }),
        },
        404: { description: 'no_subscription: the team never subscribed' },
      },
      handler: async (ctx) => {
        const { team } = await access(ctx, 'billing:read');
        const subscription = await getSubscription(options.database, team.id);
        const open = await findOpenCheckout(options.database, team.id, (options.now ?? (() => new Date()))());
        if (!subscription) {
          throw new TollgateError(
            'no_subscription',
            open
              ? `the team has no subscription yet; its Checkout for ${open.planSlug} is open at ${open.url}`
              : 'the team has no subscription',
            { hint: open ? 'pay at the Checkout URL to start it' : 'subscribe with tollgate subscribe <plan>' },
          );
        }
        ctx.body = {
          ...subscriptionBody(subscription),
          open_checkout: open
            ? {
                checkout_url: open.url,
                checkout_id: open.id,
                plan: open.planSlug,
                currency: open.currency,
                interval: open.interval,
                expires_at: open.expiresAt?.toISOString() ?? null,
              }
            : null,
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/subscription/change',
      operationId: 'changeSubscription',
      summary: 'Move the subscription to another plan and/or billing interval (billing:write)',
      description:
        'A plan that costs as much or more applies at once and the rest of the period is prorated; one that costs less applies at the period end. `interval` switches between monthly and annual billing: to annual at once (a new period starts now, the unused part of the monthly fee credited), to monthly at the end of the paid year (a pending change); during a trial at once either way, without proration. Give `plan`, `interval` or both. From a free plan to a paid one through Stripe, answers 202 with a Checkout URL.',
      tags: ['billing'],
      body: z
        .object({
          plan: planSlugSchema.optional().describe('slug of the plan (its newest version); default: the current plan'),
          interval: z.enum(['month', 'year']).optional().describe('default: the current interval'),
        })
        .refine((body) => body.plan !== undefined || body.interval !== undefined, {
          message: 'give a plan, an interval, or both',
        }),
      responses: {
        200: {
          description: 'Changed, or the downgrade scheduled',
          schema: z.object({
            change: z.enum(['upgraded', 'downgrade_scheduled', 'interval_switched', 'interval_switch_scheduled']),
            proration: z
              .object({ credit_minor: z.number(), charge_minor: z.number(), net_minor: z.number() })
              .nullable(),
            subscription: subscriptionSchema,
          }),
        },
        202: { description: 'Pay at the Checkout URL to start the paid plan', schema: checkoutSchema },
        400: { description: 'validation_failed, price_not_offered (no price in that interval)' },
        402: { description: 'payment_required: the subscription is unpaid' },
        404: { description: 'no_subscription, not_found' },
        409: { description: 'plan_archived, subscription_unchanged' },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await access(ctx, 'billing:write');
        const result = await changeSubscriptionPlan(options, {
          team: { id: team.id, name: team.name },
          plan: body.plan,
          interval: body.interval,
          actor: actorOf(ctx, caller),
        });
        if (result.kind === 'checkout') {
          ctx.status = 202;
          ctx.body = { checkout_url: result.checkoutUrl, checkout_id: result.checkoutId };
          return;
        }
        const proration = result.kind === 'upgraded' || result.kind === 'interval_switched' ? result.proration : null;
        ctx.body = {
          change: result.kind,
          proration: proration
            ? {
                credit_minor: proration.creditMinor,
                charge_minor: proration.chargeMinor,
                net_minor: proration.netMinor,
              }
            : null,
          subscription: subscriptionBody(result.subscription),
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/subscription/cancel',
      operationId: 'cancelSubscription',
      summary: 'Cancel the subscription now, or at the period end (billing:write)',
      tags: ['billing'],
      body: z.object({ at_period_end: z.boolean().default(false) }),
      responses: {
        200: { description: 'Canceled, or set to cancel', schema: subscriptionSchema },
        404: { description: 'no_subscription' },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await access(ctx, 'billing:write');
        ctx.body = subscriptionBody(
          await cancelSubscription(options, {
            teamId: team.id,
            atPeriodEnd: body.at_period_end,
            actor: actorOf(ctx, caller),
          }),
        );
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/subscription/resume',
      operationId: 'resumeSubscription',
      summary: 'Undo a cancel at the period end (billing:write)',
      tags: ['billing'],
      responses: {
        200: { description: 'Resumed', schema: subscriptionSchema },
        404: { description: 'no_subscription' },
        409: { description: 'subscription_not_canceling' },
      },
      handler: async (ctx) => {
        const { caller, team } = await access(ctx, 'billing:write');
        ctx.body = subscriptionBody(
          await resumeSubscription(options, { teamId: team.id, actor: actorOf(ctx, caller) }),
        );
      },
    }),
  ];
}
