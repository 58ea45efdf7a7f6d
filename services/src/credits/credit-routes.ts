import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import { z } from 'zod';
import { appendAuditEntry } from '../audit/index.js';
import type { BillingProvider } from '../billing/billing-provider.js';
import { type Currency, currencySchema, metricNameSchema } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';
import { defineRoute } from '../http/route.js';
import { authenticate, callerAudit } from '../identity/authenticate.js';
import { authorize } from '../identity/authorize.js';
import type { Database } from '../storage/database.js';
import { teamAccess } from '../teams/team-routes.js';
import {
  type CreditBalance,
  type CreditEntry,
  creditBalance,
  grantCredits,
  listCreditEntries,
  setLowBalanceThreshold,
} from './credit-ledger.js';
import {
  archiveCreditPack,
  type CreditPack,
  createCreditPack,
  listCreditPacks,
  packCreateSchema,
} from './credit-packs.js';
import { type CreditPool, formatQuantity, parseQuantity, quantityText } from './credit-pool.js';
import {
  type CreditPurchase,
  type CreditPurchaseListItem,
  confirmManualPurchase,
  listCreditPurchases,
  startPackPurchase,
} from './credit-purchases.js';

export interface CreditRouteOptions {
  database: Database;
  signingKey: Buffer;
  /** Who collects pack purchases; the manual provider leaves them pending for an operator. */
  provider: BillingProvider;
  /** Where the provider's hosted payment page sends the customer back. */
  returnUrl?: string | undefined;
}

const params = (ctx: Context) => (ctx as unknown as { params: Record<string, string> }).params;

const digits = z.string().describe('a whole number as a string: minor units of a currency, or units of a metric');

const poolFields = {
  currency: currencySchema.nullable().describe('set for money, in minor units'),
  metric: z.string().nullable().describe('set for units of a metric'),
};

const packDocumentSchema = z.object({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  prices: z.array(
    z.object({
      currency: z.string(),
      amount: z.string().describe('major units, e.g. "49.00"'),
      amount_minor: digits,
    }),
  ),
  grant: z.object({
    ...poolFields,
    amount: z.string().describe('"50.00" of a currency, or "1000000" units'),
    amount_minor: digits,
    display: z.string().describe('"$50.00" or "1,000,000 calls"'),
  }),
  validity_days: z.number().int().nullable(),
  archived_at: z.string().nullable(),
  created_at: z.string(),
});

const poolBody = (pool: CreditPool) =>
  'currency' in pool ? { currency: pool.currency, metric: null } : { currency: null, metric: pool.metric };

function packBody(pack: CreditPack): z.infer<typeof packDocumentSchema> {
  return {
    id: pack.id,
    slug: pack.slug,
    name: pack.name,
    prices: pack.prices.map((price) => ({
      currency: price.currency,
      amount: quantityText({ currency: price.currency }, price.amountMinor),
      amount_minor: `${price.amountMinor}`,
    })),
    grant: {
      ...poolBody(pack.grant.pool),
      amount: quantityText(pack.grant.pool, pack.grant.amount),
      amount_minor: `${pack.grant.amount}`,
      display: formatQuantity(pack.grant.pool, pack.grant.amount),
    },
    validity_days: pack.validityDays,
    archived_at: pack.archivedAt?.toISOString() ?? null,
    created_at: pack.createdAt.toISOString(),
  };
}

const purchaseSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  pack: z.string(),
  currency: z.string(),
  amount: z.string().describe('major units, e.g. "49.00"'),
  amount_minor: digits,
  status: z.enum(['pending', 'paid', 'refunded', 'expired']).describe('expired: the Checkout was abandoned'),
  provider: z.enum(['manual', 'stripe']),
  checkout_url: z.string().nullable().describe("the provider's hosted payment page; null: an operator confirms it"),
  created_at: z.string(),
  paid_at: z.string().nullable(),
  refunded_at: z.string().nullable(),
});

function purchaseBody(purchase: CreditPurchase): z.infer<typeof purchaseSchema> {
  return {
    id: purchase.id,
    team_id: purchase.teamId,
    pack: purchase.packSlug,
    currency: purchase.currency,
    amount: quantityText({ currency: purchase.currency }, purchase.amountMinor),
    amount_minor: `${purchase.amountMinor}`,
    status: purchase.status,
    provider: purchase.provider,
    checkout_url: purchase.checkoutUrl,
    created_at: purchase.createdAt.toISOString(),
    paid_at: purchase.paidAt?.toISOString() ?? null,
    refunded_at: purchase.refundedAt?.toISOString() ?? null,
  };
}

const purchaseListItemSchema = purchaseSchema.omit({ checkout_url: true }).extend({
  grant: z.object({
    ...poolFields,
    amount: z.string().describe('"50.00" of a currency, or "1000000" units'),
    amount_minor: digits,
    display: z.string().describe('"$50.00" or "1,000,000 calls"'),
  }),
  granted: z
    .boolean()
    .describe('the pack is in the ledger (paid; refunded ones stay true: the reversal is its own entry)'),
  provider_reference: z
    .string()
    .nullable()
    .describe("the provider's payment (pi_..., manual:<id>) once paid, else its checkout session (cs_...)"),
});

function purchaseListItemBody(purchase: CreditPurchaseListItem): z.infer<typeof purchaseListItemSchema> {
  const { checkout_url: _url, ...body } = purchaseBody(purchase);
  return {
    ...body,
    grant: {
      ...poolBody(purchase.grant.pool),
      amount: quantityText(purchase.grant.pool, purchase.grant.amount),
      amount_minor: `${purchase.grant.amount}`,
      display: formatQuantity(purchase.grant.pool, purchase.grant.amount),
    },
    granted: purchase.grantEntryId !== null,
    provider_reference: purchase.providerPaymentId ?? purchase.providerSessionId,
  };
}

function purchasePageQuery(ctx: Context): { limit: number; before?: string } {
  const { limit, before } = ctx.query;
  if (limit !== undefined && (typeof limit !== 'string' || !/^[1-9]\d{0,2}$/.test(limit) || Number(limit) > 200)) {
    throw new TollgateError('validation_failed', 'limit: a number from 1 to 200');
  }
  if (before !== undefined && typeof before !== 'string') {
    throw new TollgateError('validation_failed', 'before: the next_before of the previous page');
  }
  return { limit: limit === undefined ? 50 : Number(limit), ...(before === undefined ? {} : { before }) };
}

const balanceSchema = z.object({
  ...poolFields,
  balance: z.string().describe('"25.00" of a currency, or units'),
  balance_minor: digits,
  display: z.string(),
  low_balance_below: z.string().nullable().describe('the threshold, like balance; null: none'),
  below_threshold: z.boolean(),
  next_expiry: z.object({ at: z.string(), amount: z.string() }).nullable(),
});

function balanceBody(balance: CreditBalance): z.infer<typeof balanceSchema> {
  return {
    ...poolBody(balance.pool),
    balance: quantityText(balance.pool, balance.balance),
    balance_minor: `${balance.balance}`,
    display: formatQuantity(balance.pool, balance.balance),
    low_balance_below:
      balance.lowBalanceThreshold === null ? null : quantityText(balance.pool, balance.lowBalanceThreshold),
    below_threshold: balance.belowThreshold,
    next_expiry: balance.nextExpiry
      ? { at: balance.nextExpiry.at.toISOString(), amount: quantityText(balance.pool, balance.nextExpiry.amount) }
      : null,
  };
}

const entrySchema = z.object({
  id: z.string(),
  seq: digits,
  kind: z.enum(['grant', 'consumption', 'expiry', 'refund_reversal', 'consumption_reversal']),
  ...poolFields,
  amount: z.string().describe('signed: "50.00", "-25.00", or units'),
  amount_minor: z.string(),
  balance_after: z.string(),
  requested: z.string().nullable().describe('a consumption: what was asked for'),
  source: z.enum(['pack', 'operator']).nullable(),
  pack: z.string().nullable(),
  expires_at: z.string().nullable(),
  reference: z.string().nullable(),
  reason: z.string().nullable(),
  created_by_user_id: z.string().nullable(),
  created_at: z.string(),
});

function entryBody(entry: CreditEntry): z.infer<typeof entrySchema> {
  const signed = (value: bigint) =>
    value < 0n ? `-${quantityText(entry.pool, -value)}` : quantityText(entry.pool, value);
  return {
    id: entry.id,
    seq: `${entry.seq}`,
    kind: entry.kind,
    ...poolBody(entry.pool),
    amount: signed(entry.delta),
    amount_minor: `${entry.delta}`,
    balance_after: quantityText(entry.pool, entry.balanceAfter),
    requested: entry.requested === null ? null : quantityText(entry.pool, entry.requested),
    source: entry.source,
    pack: entry.packSlug,
    expires_at: entry.expiresAt?.toISOString() ?? null,
    reference: entry.reference,
    reason: entry.reason,
    created_by_user_id: entry.createdByUserId,
    created_at: entry.createdAt.toISOString(),
  };
}

/** Money (currency + amount) or units of a metric (metric + units): exactly one of the two. */
const quantityFields = {
  currency: currencySchema.optional(),
  amount: z.string().max(40).optional().describe('major units of the currency, e.g. "25.00"'),
  metric: metricNameSchema.optional(),
  units: z
    .union([z.number().int(), z.string().max(20)])
    .optional()
    .describe('whole units of the metric'),
};

function onePool(
  body: { currency?: unknown; amount?: unknown; metric?: unknown; units?: unknown },
  ctx: z.RefinementCtx,
  amountNeeded = true,
) {
  const money = body.currency !== undefined || body.amount !== undefined;
  const units = body.metric !== undefined || body.units !== undefined;
  if (money === units) {
    ctx.addIssue({ code: 'custom', message: 'give either currency and amount, or metric and units' });
  } else if (money && (body.currency === undefined || (amountNeeded && body.amount === undefined))) {
    ctx.addIssue({ code: 'custom', message: amountNeeded ? 'currency and amount go together' : 'give the currency' });
  } else if (units && (body.metric === undefined || (amountNeeded && body.units === undefined))) {
    ctx.addIssue({ code: 'custom', message: amountNeeded ? 'metric and units go together' : 'give the metric' });
  }
}

const grantBody = z
  .strictObject({
    ...quantityFields,
    reason: z.string().trim().min(1, 'say why, for the ledger and the audit log').max(500),
    expires_in_days: z.number().int().min(1).max(3650).optional().describe('absent: never expires'),
    reference: z.string().max(200).optional(),
    idempotency_key: z
      .string()
      .min(1)
      .max(120)
      .optional()
      .describe('a retried grant with the same key changes nothing and answers the first one'),
  })
  .superRefine((body, ctx) => onePool(body, ctx));

const lowBalanceBody = z
  .strictObject({
    currency: currencySchema.optional(),
    metric: metricNameSchema.optional(),
    below: z
      .union([z.string().max(40), z.number().int()])
      .nullable()
      .describe('alert when a debit takes the balance below this ("10.00" of the currency, or units); null removes it'),
  })
  .superRefine((body, ctx) => onePool(body, ctx, false));

const poolOf = (body: { currency?: Currency | undefined; metric?: string | undefined }): CreditPool =>
  body.currency !== undefined ? { currency: body.currency } : { metric: body.metric ?? '' };

function booleanQuery(ctx: Context, name: string): boolean {
  const value = ctx.query[name];
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw new TollgateError('validation_failed', `${name}: use ${name}=true or leave it out`);
}

function pageQuery(ctx: Context): { limit: number; before?: bigint } {
  const { limit, before } = ctx.query;
  if (limit !== undefined && (typeof limit !== 'string' || !/^[1-9]\d{0,2}$/.test(limit) || Number(limit) > 200)) {
    throw new TollgateError('validation_failed', 'limit: a number from 1 to 200');
  }
  if (before !== undefined && (typeof before !== 'string' || !/^[1-9]\d{0,18}$/.test(before))) {
    throw new TollgateError('validation_failed', 'before: the next_before of the previous page');
  }
  return {
    limit: limit === undefined ? 50 : Number(limit),
    ...(before === undefined ? {} : { before: BigInt(before) }),
  };
}

/**
 * Credit packs (`/v1/credit-packs`: everyone signed in reads, `credits:manage` writes) and a team's
 * credits (`/v1/teams/:team/credits`: billing:read; grants: credits:manage; the low-balance
 * threshold: billing:write). Each write is one transaction with its audit entry.
 */
export function creditRoutes(options: CreditRouteOptions) {
  const { database } = options;

  const operatorCaller = async (ctx: Context) => {
    const caller = await authenticate(ctx, options);
    await authorize(ctx, { database, caller, permission: 'credits:manage' });
    return caller;
  };

  return [
    defineRoute({
      method: 'get',
      path: '/v1/credit-packs',
      operationId: 'listCreditPacks',
      summary: 'The credit packs on offer',
      description: 'Archived packs only with ?archived=true.',
      tags: ['credits'],
      responses: { 200: { description: 'Packs', schema: z.object({ packs: z.array(packDocumentSchema) }) } },
      handler: async (ctx) => {
        const includeArchived = booleanQuery(ctx, 'archived');
        await authenticate(ctx, options);
        ctx.body = { packs: (await listCreditPacks(database, { includeArchived })).map(packBody) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/credit-packs',
      operationId: 'createCreditPack',
      summary: 'Create a credit pack (credits:manage, operators)',
      description:
        'Prices per currency in major units ("49.00"); grant is either {currency, amount} (credit) or {metric, units}; validity_days limits how long a purchase stays usable.',
      tags: ['credits'],
      body: packCreateSchema,
      responses: { 201: { description: 'Created', schema: packDocumentSchema } },
      handler: async (ctx, { body }) => {
        const caller = await operatorCaller(ctx);
        const pack = await database.transaction(async (tx) => {
          const created = await createCreditPack(tx, body, { createdByUserId: caller.user.id });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'credit_pack.created',
              outcome: 'success',
              targetType: 'credit_pack',
              targetId: created.id,
              details: { slug: created.slug, grant: packBody(created).grant, prices: packBody(created).prices },
            }),
          );
          return created;
        });
        ctx.status = 201;
        ctx.body = packBody(pack);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/credit-packs/:pack/archive',
      operationId: 'archiveCreditPack',
      summary: 'Archive a credit pack (credits:manage, operators)',
      description: 'No longer offered; purchases already paid are still granted. Archiving twice changes nothing.',
      tags: ['credits'],
      responses: { 200: { description: 'The archived pack', schema: packDocumentSchema } },
      handler: async (ctx) => {
        const caller = await operatorCaller(ctx);
        const slug = (params(ctx).pack ?? '').toLowerCase();
        const pack = await database.transaction(async (tx) => {
          const result = await archiveCreditPack(tx, slug);
          if (result.archived) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'credit_pack.archived',
                outcome: 'success',
                targetType: 'credit_pack',
                targetId: result.pack.id,
                details: { slug: result.pack.slug },
              }),
            );
          }
          return result.pack;
        });
        ctx.body = packBody(pack);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/credits',
      operationId: 'getTeamCredits',
      summary: "The team's credit balances and ledger, newest entries first (billing:read)",
      description:
        'One balance per currency or metric the team has held credits in. Entries come ?limit (default 50, at most 200) at a time; pass next_before as ?before for the next page.',
      tags: ['credits'],
      responses: {
        200: {
          description: 'Balances and entries',
          schema: z.object({
            balances: z.array(balanceSchema),
            entries: z.array(entrySchema),
            next_before: z.string().nullable(),
          }),
        },
      },
      handler: async (ctx) => {
        const page = pageQuery(ctx);
        const { team } = await teamAccess(ctx, options, 'billing:read');
        const balances = await creditBalance(database, team.id);
        const { entries, nextBefore } = await listCreditEntries(database, team.id, page);
        ctx.body = {
          balances: balances.map(balanceBody),
          entries: entries.map(entryBody),
          next_before: nextBefore === null ? null : `${nextBefore}`,
        };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/credits/grants',
      operationId: 'grantTeamCredits',
      summary: 'Grant credits to a team (credits:manage, operators)',
      description:
        'Money (currency and amount in major units) or units of a metric, with a reason. With idempotency_key, a retried grant answers 200 with the first one and changes nothing.',
      tags: ['credits'],
      body: grantBody,
      responses: {
        201: { description: 'Granted', schema: z.object({ entry: entrySchema, balance: balanceSchema }) },
        200: { description: 'Granted before under this idempotency key; nothing changed' },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'credits:manage');
        const pool = poolOf(body);
        const amount = parseQuantity(
          pool,
          (body.amount ?? body.units) as string | number,
          body.amount !== undefined ? 'amount' : 'units',
        );
        if (amount === 0n) throw new TollgateError('validation_failed', 'amount: must be more than 0');
        const idempotencyKey = `operator-grant:${body.idempotency_key ?? randomUUID()}`;
        const result = await database.transaction(async (tx) => {
          const granted = await grantCredits(tx, {
            teamId: team.id,
            pool,
            amount,
            source: 'operator',
            expiresAt:
              body.expires_in_days === undefined ? null : new Date(Date.now() + body.expires_in_days * 86_400_000),
            reference: body.reference ?? null,
            reason: body.reason,
            idempotencyKey,
            createdByUserId: caller.user.id,
          });
          if (!granted.replayed) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'credits.granted',
                outcome: 'success',
                targetType: 'credit_entry',
                targetId: granted.entry.id,
                teamId: team.id,
                details: {
                  ...poolBody(pool),
                  amount_minor: `${amount}`,
                  reason: body.reason,
                  expires_at: granted.entry.expiresAt?.toISOString() ?? null,
                },
              }),
            );
          }
          const balance = (await creditBalance(tx, team.id)).find(
            (candidate) => JSON.stringify(candidate.pool) === JSON.stringify(pool),
          ) as CreditBalance;
          return { ...granted, balance };
        });
        ctx.status = result.replayed ? 200 : 201;
        ctx.body = { entry: entryBody(result.entry), balance: balanceBody(result.balance) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/v1/teams/:team/credits/purchases',
      operationId: 'listCreditPurchases',
      summary: "The team's credit pack purchases, newest first (billing:read)",
      description:
        'Every purchase, pending, paid or refunded, with what its pack grants and the provider reference. ?limit (default 50, at most 200) at a time; pass next_before as ?before for the next page.',
      tags: ['credits'],
      responses: {
        200: {
          description: 'Purchases',
          schema: z.object({ purchases: z.array(purchaseListItemSchema), next_before: z.string().nullable() }),
        },
        400: {
          description: 'validation_failed: a limit outside 1..200, or a before that is not a purchase of the team',
        },
      },
      handler: async (ctx) => {
        const page = purchasePageQuery(ctx);
        const { team } = await teamAccess(ctx, options, 'billing:read');
        const { purchases, nextBefore } = await listCreditPurchases(database, team.id, page);
        ctx.body = { purchases: purchases.map(purchaseListItemBody), next_before: nextBefore };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/teams/:team/credits/purchases',
      operationId: 'buyCreditPack',
      summary: 'Buy a credit pack (billing:write)',
      description:
        "Priced in the team's currency (fixed by its first subscription; else `currency`, USD by default). Through Stripe: a Checkout Session in payment mode; pay at checkout_url and the pack is granted when Stripe reports the payment. With the manual provider the purchase stays pending until an operator confirms it.",
      tags: ['credits'],
      body: z.object({
        pack: z.string().min(1).max(63).describe('slug of the pack'),
        currency: currencySchema.optional().describe('only for a team without a fixed currency'),
      }),
      responses: {
        201: { description: 'The purchase, pending', schema: purchaseSchema },
        400: { description: 'validation_failed; price_not_offered: the pack has no price in the team currency' },
        404: { description: 'not_found: no such pack (or team)' },
        409: { description: 'pack_archived; currency_fixed' },
      },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'billing:write');
        const purchase = await startPackPurchase(
          { database, provider: options.provider, returnUrl: options.returnUrl },
          {
            team: { id: team.id, name: team.name },
            packSlug: body.pack,
            currency: body.currency,
            createdByUserId: caller.user.id,
            audit: (tx, started) =>
              appendAuditEntry(
                tx,
                callerAudit(ctx, caller, {
                  action: 'credits.purchase_started',
                  outcome: 'success',
                  targetType: 'credit_purchase',
                  targetId: started.id,
                  teamId: team.id,
                  details: {
                    pack: started.packSlug,
                    currency: started.currency,
                    amount_minor: `${started.amountMinor}`,
                  },
                }),
              ),
          },
        );
        ctx.status = 201;
        ctx.body = purchaseBody(purchase);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/v1/credits/purchases/:id/confirm',
      operationId: 'confirmCreditPurchase',
      summary: 'Confirm a manual pack purchase was paid, granting the pack (credits:manage, operators)',
      description: 'Confirming it again answers 200 and changes nothing. A Stripe purchase is confirmed by Stripe.',
      tags: ['credits'],
      responses: {
        200: { description: 'The purchase, paid', schema: purchaseSchema },
        404: { description: 'not_found' },
        409: { description: 'purchase_not_pending: a Stripe or refunded purchase' },
      },
      handler: async (ctx) => {
        const caller = await operatorCaller(ctx);
        const purchase = await database.transaction(async (tx) => {
          const result = await confirmManualPurchase(tx, {
            purchaseId: params(ctx).id ?? '',
            confirmedByUserId: caller.user.id,
          });
          if (result.confirmed) {
            await appendAuditEntry(
              tx,
              callerAudit(ctx, caller, {
                action: 'credits.purchase_confirmed',
                outcome: 'success',
                targetType: 'credit_purchase',
                targetId: result.purchase.id,
                teamId: result.purchase.teamId,
                details: { pack: result.purchase.packSlug },
              }),
            );
          }
          return result.purchase;
        });
        ctx.body = purchaseBody(purchase);
      },
    }),
    defineRoute({
      method: 'put',
      path: '/v1/teams/:team/credits/low-balance',
      operationId: 'setCreditLowBalance',
      summary: "Set the team's low-balance threshold of a currency or metric (billing:write)",
      description:
        'When a debit (consumption or expiry) takes the balance below it, one alert is recorded; the next one only after the balance is back at or above it. below: null removes it.',
      tags: ['credits'],
      body: lowBalanceBody,
      responses: { 200: { description: 'The balance with its threshold', schema: balanceSchema } },
      handler: async (ctx, { body }) => {
        const { caller, team } = await teamAccess(ctx, options, 'billing:write');
        const pool = poolOf(body);
        const threshold = body.below === null ? null : parseQuantity(pool, body.below, 'below');
        if (threshold === 0n)
          throw new TollgateError('validation_failed', 'below: must be more than 0 (null removes it)');
        const balance = await database.transaction(async (tx) => {
          const result = await setLowBalanceThreshold(tx, { teamId: team.id, pool, threshold });
          await appendAuditEntry(
            tx,
            callerAudit(ctx, caller, {
              action: 'credits.low_balance_set',
              outcome: 'success',
              targetType: 'team',
              targetId: team.id,
              teamId: team.id,
              details: { ...poolBody(pool), below_minor: threshold === null ? null : `${threshold}` },
            }),
          );
          return result;
        });
        ctx.body = balanceBody(balance);
      },
    }),
  ];
}
