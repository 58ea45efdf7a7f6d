import { randomUUID } from 'node:crypto';
import type Stripe from 'stripe';
import { appendAuditEntry } from '../audit/index.js';
import type { BillingProvider } from '../billing/billing-provider.js';
import { type Currency, currencySchema } from '../billing/pricing-schema.js';
import type { StripeEventContext, StripeEventHandlers } from '../billing/stripe-webhooks.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import { type CreditPack, findCreditPack, fulfilPackPurchase, reversePackPurchase } from './credit-packs.js';
import { type CreditPool, poolFromKey } from './credit-pool.js';

/**
 * Buying a credit pack (docs/billing.md "Credits"). A purchase row is written first, so its id is
 * the provider's idempotency key and travels in the provider's metadata; the pack is granted once
 * the provider reports the payment (Stripe: payment_intent.succeeded) or, on the manual provider,
 * once an operator confirms it. The grant itself is `fulfilPackPurchase`, idempotent by the payment.
 */

export type CreditPurchaseStatus = 'pending' | 'paid' | 'refunded' | 'expired';

export interface CreditPurchase {
  id: string;
  teamId: string;
  packSlug: string;
  currency: Currency;
  /** minor units, e.g. cents */
  amountMinor: bigint;
  status: CreditPurchaseStatus;
  provider: 'manual' | 'stripe';
  providerSessionId: string | null;
  providerPaymentId: string | null;
  checkoutUrl: string | null;
  createdAt: Date;
  paidAt: Date | null;
  refundedAt: Date | null;
}

interface PurchaseRow {
  id: string;
  team_id: string;
  pack_slug: string;
  currency: Currency;
  amount_minor: string;
  status: CreditPurchaseStatus;
  provider: 'manual' | 'stripe';
  provider_session_id: string | null;
  provider_payment_id: string | null;
  checkout_url: string | null;
  created_at: Date;
  paid_at: Date | null;
  refunded_at: Date | null;
}

const purchaseColumns = `p.id, p.team_id, k.slug AS pack_slug, p.currency, p.amount_minor::text, p.status, p.provider,
  p.provider_session_id, p.provider_payment_id, p.checkout_url, p.created_at, p.paid_at, p.refunded_at`;

const toPurchase = (row: PurchaseRow): CreditPurchase => ({
  id: row.id,
  teamId: row.team_id,
  packSlug: row.pack_slug,
  currency: row.currency,
  amountMinor: BigInt(row.amount_minor),
  status: row.status,
  provider: row.provider,
  providerSessionId: row.provider_session_id,
  providerPaymentId: row.provider_payment_id,
  checkoutUrl: row.checkout_url,
  createdAt: row.created_at,
  paidAt: row.paid_at,
  refundedAt: row.refunded_at,
});

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One purchase, locked for update when `lock` is set; undefined for an unknown (or malformed) id. */
export async function findCreditPurchase(
  db: Queryable,
  id: string,
  options: { lock?: boolean } = {},
): Promise<CreditPurchase | undefined> {
  if (!uuidPattern.test(id)) return undefined;
  const result = await db.query<PurchaseRow>(
    `SELECT ${purchaseColumns} FROM credit_purchases p JOIN credit_packs k ON k.id = p.pack_id
     WHERE p.id = $1 ${options.lock ? 'FOR UPDATE OF p' : ''}`,
    [id],
  );
  return result.rows[0] ? toPurchase(result.rows[0]) : undefined;
}

export interface StartPackPurchaseOptions {
  database: Database;
  provider: BillingProvider;
  /** Where the provider's hosted page sends the customer back. */
  returnUrl?: string | undefined;
}

export interface StartPackPurchaseInput {
  team: { id: string; name: string };
  packSlug: string;
  /** The currency to pay in when the team has none fixed yet (USD by default); else it must match. */
  currency?: Currency | undefined;
  createdByUserId?: string | null;
  /** Writes the audit entry in the transaction that records the purchase. */
  audit?: (tx: Queryable, purchase: CreditPurchase) => Promise<unknown>;
}

async function payableCurrency(db: Queryable, teamId: string, requested: Currency | undefined): Promise<Currency> {
  const team = await db.query<{ billing_currency: string | null }>('SELECT billing_currency FROM teams WHERE id = $1', [
    teamId,
  ]);
  const fixed = team.rows[0]?.billing_currency;
  if (fixed && requested && fixed !== requested) {
    throw new TollgateError('currency_fixed', `this team pays in ${fixed}; it cannot buy credits in ${requested}`, {
      hint: `buy without a currency, or with ${fixed}`,
    });
  }
  return currencySchema.parse(fixed ?? requested ?? 'USD');
}

function packPrice(pack: CreditPack, currency: Currency): bigint {
  if (pack.archivedAt) {
    throw new TollgateError('pack_archived', `the credit pack ${pack.slug} is no longer sold`, {
      hint: 'tollgate credits packs list shows the packs on offer',
    });
  }
  const price = pack.prices.find((candidate) => candidate.currency === currency);
  if (!price) {
    const offered = pack.prices.map((candidate) => candidate.currency).join(', ');
    throw new TollgateError(
      'price_not_offered',
      `the credit pack ${pack.slug} has no price in ${currency}, the team's currency (it is sold in ${offered})`,
      { hint: 'choose a pack priced in the team currency (tollgate credits packs list)' },
    );
  }
  return price.amountMinor;
}

/**
 * Starts buying a pack: refused before anything is written for an unknown or archived pack, or a
 * pack without a price in the team's currency. With a provider that has hosted payments (Stripe), it
 * answers the payment page's URL; otherwise the purchase waits, pending, for an operator.
 */
export async function startPackPurchase(
  options: StartPackPurchaseOptions,
  input: StartPackPurchaseInput,
): Promise<CreditPurchase> {
  const { database, provider } = options;
  const pack = await findCreditPack(database, input.packSlug);
  if (!pack) {
    throw new TollgateError('not_found', `no credit pack ${input.packSlug}`, {
      hint: 'tollgate credits packs list shows them',
    });
  }
  const currency = await payableCurrency(database, input.team.id, input.currency);
  const amountMinor = packPrice(pack, currency);
  const id = randomUUID();
  const providerName = provider.startPayment ? provider.name : 'manual';
  const insert = (tx: Queryable, session: { url: string; sessionId: string } | null) =>
    tx.query(
      `INSERT INTO credit_purchases (id, team_id, pack_id, currency, amount_minor, provider, provider_session_id,
         checkout_url, created_by_user_id)
       VALUES ($1, $2, $3, $4, $5::bigint, $6, $7, $8, $9)`,
      [
        id,
        input.team.id,
        pack.id,
        currency,
        String(amountMinor),
        providerName,
        session?.sessionId ?? null,
        session?.url ?? null,
        input.createdByUserId ?? null,
      ],
    );
  // The provider is called before anything is written: a failed call leaves no purchase behind, and
  // a retried one reuses the session through the idempotency key derived from `id`.
  const session = provider.startPayment
    ? await provider.startPayment(database, {
        teamId: input.team.id,
        teamName: input.team.name,
        purchaseId: id,
        currency,
        amountMinor,
        description: pack.name,
        metadata: { tollgate_team_id: input.team.id, tollgate_pack: pack.slug, tollgate_purchase_id: id },
        returnUrl: options.returnUrl ?? 'https://localhost/',
      })
    : null;
  return database.transaction(async (tx) => {
    await insert(tx, session);
    const purchase = (await findCreditPurchase(tx, id)) as CreditPurchase;
    await input.audit?.(tx, purchase);
    return purchase;
  });
}

/**
 * Marks a pending purchase paid and grants its pack, once: the payment reference (a Stripe payment
 * intent, or `manual:<purchase id>`) is the grant's idempotency key. A refunded or paid purchase is
 * left as it is.
 */
async function payPurchase(
  tx: Queryable,
  purchase: CreditPurchase,
  input: { paymentReference: string; confirmedByUserId?: string | null; now: Date },
): Promise<boolean> {
  if (purchase.status !== 'pending') return false;
  await fulfilPackPurchase(tx, {
    teamId: purchase.teamId,
    packSlug: purchase.packSlug,
    paymentReference: input.paymentReference,
    now: input.now,
  });
  await tx.query(
    `UPDATE credit_purchases SET status = 'paid', provider_payment_id = $2, paid_at = $3, confirmed_by_user_id = $4
     WHERE id = $1`,
    [purchase.id, input.paymentReference, input.now, input.confirmedByUserId ?? null],
  );
  return true;
}

/**
 * An operator confirms a manual purchase was paid (a bank transfer, an invoice paid outside
 * Tollgate): the pack is granted. Confirming it again answers it unchanged (`confirmed: false`); a
 * Stripe purchase, or a refunded one, is refused with `purchase_not_pending`.
 */
export async function confirmManualPurchase(
  tx: Queryable,
  input: { purchaseId: string; confirmedByUserId: string | null; now?: Date },
): Promise<{ purchase: CreditPurchase; confirmed: boolean }> {
  const purchase = await findCreditPurchase(tx, input.purchaseId, { lock: true });
  if (!purchase) throw new TollgateError('not_found', `no credit purchase ${input.purchaseId}`);
  if (purchase.provider === 'manual' && purchase.status === 'paid') return { purchase, confirmed: false };
  if (purchase.provider !== 'manual' || purchase.status !== 'pending') {
    throw new TollgateError(
      'purchase_not_pending',
      purchase.provider === 'manual'
        ? `the credit purchase ${purchase.id} is ${purchase.status}`
        : `the credit purchase ${purchase.id} is paid through ${purchase.provider}, which confirms it itself`,
    );
  }
  await payPurchase(tx, purchase, {
    paymentReference: `manual:${purchase.id}`,
    confirmedByUserId: input.confirmedByUserId,
    now: input.now ?? new Date(),
  });
  return { purchase: (await findCreditPurchase(tx, purchase.id)) as CreditPurchase, confirmed: true };
}

export interface CreditPurchaseListItem extends CreditPurchase {
  /** What the pack grants: minor units of a currency, or units of a metric. */
  grant: { pool: CreditPool; amount: bigint };
  /** The ledger entry of the grant, once the purchase was paid; null before. */
  grantEntryId: string | null;
}

/**
 * The team's purchases, newest first, `limit` at a time. `before` is the id of the last purchase of
 * the previous page (the `next_before` of the route); an id that is not one of the team's purchases
 * is refused with validation_failed.
 */
export async function listCreditPurchases(
  db: Queryable,
  teamId: string,
  options: { limit: number; before?: string | undefined },
): Promise<{ purchases: CreditPurchaseListItem[]; nextBefore: string | null }> {
  let cursor: { created_at: Date; id: string } | undefined;
  if (options.before !== undefined) {
    const found = uuidPattern.test(options.before)
      ? await db.query<{ created_at: Date; id: string }>(
          'SELECT created_at, id FROM credit_purchases WHERE id = $1 AND team_id = $2',
          [options.before, teamId],
        )
      : { rows: [] };
    cursor = found.rows[0];
    if (!cursor) throw new TollgateError('validation_failed', 'before: the next_before of the previous page');
  }
  const result = await db.query<
    PurchaseRow & { grant_pool: string; grant_amount: string; grant_entry_id: string | null }
  >(
    `SELECT ${purchaseColumns}, k.grant_pool, k.grant_amount::text AS grant_amount, e.id AS grant_entry_id
     FROM credit_purchases p JOIN credit_packs k ON k.id = p.pack_id
     LEFT JOIN credit_entries e ON e.team_id = p.team_id AND e.kind = 'grant'
       AND e.idempotency_key = 'pack-purchase:' || p.provider_payment_id
     WHERE p.team_id = $1 AND ($2::timestamptz IS NULL OR (p.created_at, p.id) < ($2::timestamptz, $3::uuid))
     ORDER BY p.created_at DESC, p.id DESC LIMIT $4`,
    [teamId, cursor?.created_at ?? null, cursor?.id ?? null, options.limit + 1],
  );
  const purchases = result.rows.slice(0, options.limit).map((row) => ({
    ...toPurchase(row),
    grant: { pool: poolFromKey(row.grant_pool), amount: BigInt(row.grant_amount) },
    grantEntryId: row.grant_entry_id,
  }));
  const last = purchases.at(-1);
  return { purchases, nextBefore: result.rows.length > options.limit && last ? last.id : null };
}

/**
 * A pack's Checkout the customer abandoned (Stripe: checkout.session.expired): its pending purchase
 * becomes `expired`, audited; nothing was paid and nothing is granted. A purchase already paid,
 * refunded or expired (a duplicate, or an event out of order) changes nothing: returns false.
 */
export async function expireCreditPurchaseSession(
  tx: Queryable,
  input: { sessionId: string; at: Date },
): Promise<boolean> {
  const found = await tx.query<{ id: string }>('SELECT id FROM credit_purchases WHERE provider_session_id = $1', [
    input.sessionId,
  ]);
  const purchase = found.rows[0] ? await findCreditPurchase(tx, found.rows[0].id, { lock: true }) : undefined;
  if (purchase?.status !== 'pending') return false;
  await tx.query(`UPDATE credit_purchases SET status = 'expired', expired_at = $2 WHERE id = $1`, [
    purchase.id,
    input.at,
  ]);
  await appendAuditEntry(tx, {
    actorLabel: 'system',
    action: 'credits.purchase_expired',
    outcome: 'success',
    targetType: 'credit_purchase',
    targetId: purchase.id,
    teamId: purchase.teamId,
    details: { pack: purchase.packSlug, provider_session_id: input.sessionId },
  });
  return true;
}

const idOf = (value: unknown): string | undefined =>
  typeof value === 'string'
    ? value
    : typeof (value as { id?: unknown } | null)?.id === 'string'
      ? (value as { id: string }).id
      : undefined;

/**
 * The Stripe events of pack purchases (docs/stripe.md "Handled events"). payment_intent.succeeded
 * grants: its metadata names our purchase, and the payment intent id is the grant's payment
 * reference, so a duplicate grants nothing more. checkout.session.completed in payment mode changes
 * nothing (the subscription handler ignores it). charge.refunded of a fully refunded charge takes
 * back what is left of the pack (`reversePackPurchase`); a partial refund changes no credit. A refund
 * that arrives before the payment marks the purchase refunded, and the late payment grants nothing.
 */
export function registerCreditPackStripeHandlers(handlers: StripeEventHandlers): void {
  handlers.register('payment_intent.succeeded', async (event: Stripe.Event, context: StripeEventContext) => {
    const intent = event.data.object as unknown as {
      id: string;
      amount: number;
      currency: string;
      metadata?: Record<string, string> | null;
    };
    const purchaseId = intent.metadata?.tollgate_purchase_id;
    if (!purchaseId) return;
    const purchase = await findCreditPurchase(context.tx, purchaseId, { lock: true });
    if (!purchase) {
      context.logger.warn({ purchase: purchaseId }, 'payment_intent.succeeded names no purchase of ours: ignored');
      return;
    }
    if (BigInt(intent.amount) !== purchase.amountMinor || intent.currency.toUpperCase() !== purchase.currency) {
      context.logger.error(
        { purchase: purchase.id, amount: intent.amount, currency: intent.currency },
        'a payment for a credit pack does not match its price: not granted',
      );
      return;
    }
    const granted = await payPurchase(context.tx, purchase, { paymentReference: intent.id, now: new Date() });
    context.logger.info(
      { purchase: purchase.id, granted },
      granted ? 'credit pack granted' : 'credit pack already settled',
    );
  });

  handlers.register('charge.refunded', async (event: Stripe.Event, context: StripeEventContext) => {
    const charge = event.data.object as unknown as {
      id: string;
      refunded: boolean;
      payment_intent: unknown;
      metadata?: Record<string, string> | null;
    };
    const paymentIntentId = idOf(charge.payment_intent);
    const byPayment = paymentIntentId
      ? await context.tx.query<{ id: string }>('SELECT id FROM credit_purchases WHERE provider_payment_id = $1', [
          paymentIntentId,
        ])
      : undefined;
    const purchaseId = byPayment?.rows[0]?.id ?? charge.metadata?.tollgate_purchase_id;
    if (!purchaseId) return;
    const purchase = await findCreditPurchase(context.tx, purchaseId, { lock: true });
    if (!purchase || purchase.status === 'refunded') return;
    if (!charge.refunded) {
      context.logger.info(
        { purchase: purchase.id, charge: charge.id },
        'a partial refund of a credit pack: credits kept',
      );
      return;
    }
    const now = new Date();
    if (purchase.status === 'paid' && purchase.providerPaymentId) {
      const { reversed } = await reversePackPurchase(context.tx, {
        teamId: purchase.teamId,
        paymentReference: purchase.providerPaymentId,
        now,
      });
      context.logger.info({ purchase: purchase.id, reversed: `${reversed}` }, 'credit pack refunded');
    }
    await context.tx.query(
      `UPDATE credit_purchases SET status = 'refunded', refunded_at = $2,
         provider_payment_id = coalesce(provider_payment_id, $3) WHERE id = $1`,
      [purchase.id, now, paymentIntentId ?? null],
    );
  });
}
