import { z } from 'zod';
import { type Currency, currencySchema, metricNameSchema } from '../billing/pricing-schema.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Queryable } from '../storage/database.js';
import { type GrantResult, grantCredits, reverseCreditGrant } from './credit-ledger.js';
import { type CreditPool, parseQuantity, poolFromKey, poolKey } from './credit-pool.js';

/**
 * Credit packs (docs/billing.md, "Credits"): what operators sell for credits, e.g. "pay $49, get
 * 1,000,000 calls" or "pay €45, get €50 of credit", with an optional validity in days. A purchase is
 * granted by `fulfilPackPurchase`, which the Stripe `payment_intent.succeeded` handler calls.
 */

export const packSlugSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    'use 1 to 63 lower-case letters, digits and dashes, starting with a letter or digit',
  );

/**
 * A pack as operators write it. Amounts are decimal strings in major units ("49.00"), checked
 * against the currency's decimals by `parseAmount`; units are whole numbers.
 */
export const packCreateSchema = z.strictObject({
  slug: packSlugSchema,
  name: z.string().trim().min(1, 'must not be empty').max(200),
  prices: z
    .array(z.strictObject({ currency: currencySchema, amount: z.string().max(40) }))
    .min(1, 'give a price in at least one currency')
    .max(3),
  grant: z.union([
    z.strictObject({ currency: currencySchema, amount: z.string().max(40) }),
    z.strictObject({
      metric: metricNameSchema,
      units: z.union([z.number().int(), z.string().max(20)]).describe('whole units, e.g. 1000000'),
    }),
  ]),
  validity_days: z.number().int().min(1).max(3650).nullable().optional().describe('absent or null: never expires'),
});
export type PackCreateInput = z.input<typeof packCreateSchema>;

export interface CreditPack {
  id: string;
  slug: string;
  name: string;
  /** What it costs: minor units per currency, by currency. */
  prices: { currency: Currency; amountMinor: bigint }[];
  grant: { pool: CreditPool; amount: bigint };
  validityDays: number | null;
  archivedAt: Date | null;
  createdAt: Date;
}

interface PackRow {
  id: string;
  slug: string;
  name: string;
  grant_pool: string;
  grant_amount: string;
  validity_days: number | null;
  archived_at: Date | null;
  created_at: Date;
}

async function assemble(db: Queryable, rows: PackRow[]): Promise<CreditPack[]> {
  if (rows.length === 0) return [];
  const prices = await db.query<{ pack_id: string; currency: Currency; amount_minor: string }>(
    'SELECT pack_id, currency, amount_minor::text FROM credit_pack_prices WHERE pack_id = ANY($1::uuid[]) ORDER BY currency',
    [rows.map((row) => row.id)],
  );
  return rows.map((row) => ({
    id: row.id,
    slug: row.slug,
    name: row.name,
    prices: prices.rows
      .filter((price) => price.pack_id === row.id)
      .map((price) => ({ currency: price.currency, amountMinor: BigInt(price.amount_minor) })),
    grant: { pool: poolFromKey(row.grant_pool), amount: BigInt(row.grant_amount) },
    validityDays: row.validity_days,
    archivedAt: row.archived_at,
    createdAt: row.created_at,
  }));
}

const columns = 'id, slug, name, grant_pool, grant_amount::text, validity_days, archived_at, created_at';

export async function listCreditPacks(
  db: Queryable,
  options: { includeArchived?: boolean } = {},
): Promise<CreditPack[]> {
  const result = await db.query<PackRow>(
    `SELECT ${columns} FROM credit_packs ${options.includeArchived ? '' : 'WHERE archived_at IS NULL'} ORDER BY slug`,
  );
  return assemble(db, result.rows);
}

export async function findCreditPack(db: Queryable, slug: string): Promise<CreditPack | undefined> {
  const result = await db.query<PackRow>(`SELECT ${columns} FROM credit_packs WHERE slug = $1`, [slug.toLowerCase()]);
  return (await assemble(db, result.rows))[0];
}

function notFound(slug: string): TollgateError {
  return new TollgateError('not_found', `no credit pack ${slug}`, { hint: 'tollgate credits packs list shows them' });
}

function parseInput(input: unknown): z.output<typeof packCreateSchema> {
  const parsed = packCreateSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  const first = issues[0];
  throw new TollgateError('validation_failed', first ? `${first.path || 'body'}: ${first.message}` : 'invalid pack', {
    details: { issues },
  });
}

/** Creates a pack. A slug in use answers 409 slug_taken; a bad amount 400 before anything is written. */
export async function createCreditPack(
  tx: Queryable,
  input: PackCreateInput,
  options: { createdByUserId?: string | null } = {},
): Promise<CreditPack> {
  const fields = parseInput(input);
  const seen = new Set<string>();
  const prices = fields.prices.map((price, index) => {
    if (seen.has(price.currency)) {
      throw new TollgateError('validation_failed', `prices.${index}: ${price.currency} is given twice`);
    }
    seen.add(price.currency);
    const amountMinor = parseQuantity({ currency: price.currency }, price.amount, `prices.${index}.amount`);
    if (amountMinor === 0n) {
      throw new TollgateError('validation_failed', `prices.${index}.amount: a pack costs more than 0`);
    }
    return { currency: price.currency, amountMinor };
  });
  const pool: CreditPool =
    'currency' in fields.grant ? { currency: fields.grant.currency } : { metric: fields.grant.metric };
  const amount = parseQuantity(
    pool,
    'currency' in fields.grant ? fields.grant.amount : fields.grant.units,
    'currency' in fields.grant ? 'grant.amount' : 'grant.units',
  );
  if (amount === 0n) throw new TollgateError('validation_failed', 'grant: a pack grants more than 0');
  const existing = await tx.query('SELECT 1 FROM credit_packs WHERE slug = $1', [fields.slug]);
  if (existing.rowCount > 0) {
    throw new TollgateError('slug_taken', `a credit pack with the slug "${fields.slug}" exists`, {
      hint: 'choose another slug',
    });
  }
  const created = await tx.query<{ id: string }>(
    `INSERT INTO credit_packs (slug, name, grant_pool, grant_amount, validity_days, created_by_user_id)
     VALUES ($1, $2, $3, $4::bigint, $5, $6) RETURNING id`,
    [
      fields.slug,
      fields.name,
      poolKey(pool),
      String(amount),
      fields.validity_days ?? null,
      options.createdByUserId ?? null,
    ],
  );
  const id = (created.rows[0] as { id: string }).id;
  await tx.query(
    `INSERT INTO credit_pack_prices (pack_id, currency, amount_minor)
     SELECT $1::uuid, unnest($2::text[]), unnest($3::bigint[])`,
    [id, prices.map((price) => price.currency), prices.map((price) => String(price.amountMinor))],
  );
  return (await findCreditPack(tx, fields.slug)) as CreditPack;
}

/** Archives a pack: no longer offered; purchases already paid for are still granted. */
export async function archiveCreditPack(tx: Queryable, slug: string): Promise<{ pack: CreditPack; archived: boolean }> {
  const pack = await findCreditPack(tx, slug);
  if (!pack) throw notFound(slug);
  if (pack.archivedAt) return { pack, archived: false };
  await tx.query('UPDATE credit_packs SET archived_at = now() WHERE id = $1 AND archived_at IS NULL', [pack.id]);
  return { pack: (await findCreditPack(tx, slug)) as CreditPack, archived: true };
}

/** The idempotency key of a pack purchase: one grant per payment, whoever calls and however often. */
export const packPurchaseKey = (paymentReference: string) => `pack-purchase:${paymentReference}`;

/**
 * Grants a paid pack to a team, once per payment (e.g. a Stripe payment intent id): the
 * `payment_intent.succeeded` handler calls it, and a duplicate or retried event changes nothing. An
 * archived pack is still granted: the team paid for it before, or while, it was archived.
 */
export async function fulfilPackPurchase(
  tx: Queryable,
  input: { teamId: string; packSlug: string; paymentReference: string; now?: Date },
): Promise<GrantResult & { pack: CreditPack }> {
  const reference = input.paymentReference;
  if (typeof reference !== 'string' || reference.length < 1 || reference.length > 180) {
    throw new TollgateError('validation_failed', 'payment_reference: from 1 to 180 characters');
  }
  const pack = await findCreditPack(tx, input.packSlug);
  if (!pack) throw notFound(input.packSlug);
  const now = input.now ?? new Date();
  const result = await grantCredits(tx, {
    teamId: input.teamId,
    pool: pack.grant.pool,
    amount: pack.grant.amount,
    source: 'pack',
    packId: pack.id,
    expiresAt: pack.validityDays === null ? null : new Date(now.getTime() + pack.validityDays * 86_400_000),
    reference,
    reason: `pack ${pack.slug}`,
    idempotencyKey: packPurchaseKey(reference),
    now,
  });
  return { ...result, pack };
}

/**
 * Takes back what is left of a refunded pack purchase (the `charge.refunded` handler): credits
 * already consumed stay consumed. Once per payment; a payment that granted nothing is a 404.
 */
export async function reversePackPurchase(
  tx: Queryable,
  input: { teamId: string; paymentReference: string; now?: Date },
): Promise<{ reversed: bigint; replayed: boolean }> {
  const grant = await tx.query<{ id: string }>(
    "SELECT id FROM credit_entries WHERE team_id = $1 AND idempotency_key = $2 AND kind = 'grant'",
    [input.teamId, packPurchaseKey(input.paymentReference)],
  );
  const grantEntryId = grant.rows[0]?.id;
  if (!grantEntryId) throw new TollgateError('not_found', `no pack purchase ${input.paymentReference}`);
  const result = await reverseCreditGrant(tx, {
    teamId: input.teamId,
    grantEntryId,
    reference: input.paymentReference,
    idempotencyKey: `pack-refund:${input.paymentReference}`,
    ...(input.now ? { now: input.now } : {}),
  });
  return { reversed: result.reversed, replayed: result.replayed };
}
