import { type AuditEntryInput, appendAuditEntry } from '../audit/audit-log.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import { enqueueTeamEvent } from '../webhooks/webhook-events.js';
import { formatMoney, parseAmount } from './money.js';
import type { Currency } from './pricing-schema.js';
import { recordSubscriptionPayment, type SubscriptionServiceOptions } from './subscriptions.js';

/**
 * Our invoices (docs/billing.md, "Invoices"): read them, mark one paid (an operator for the manual
 * provider, Stripe's invoice.paid for pushed ones), and correct a finalized one with a credit note.
 * A finalized invoice never changes (migration 0023 enforces it with triggers).
 */

export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'void';

export interface InvoiceLine {
  id: string;
  position: number;
  kind: 'base_fee' | 'overage' | 'proration' | 'credit';
  metric: string | null;
  quantity: bigint;
  unitPrice: string;
  /** minor units, rounded once for the line */
  amountMinor: bigint;
  description: string;
  providerItemId: string | null;
}

export interface Invoice {
  id: string;
  number: string;
  kind: 'invoice' | 'credit_note';
  correctsInvoiceId: string | null;
  teamId: string;
  teamName: string;
  subscriptionId: string;
  periodStart: Date;
  periodEnd: Date;
  currency: Currency;
  status: InvoiceStatus;
  /** minor units, e.g. cents */
  subtotalMinor: bigint;
  creditsAppliedMinor: bigint;
  /** Always 0 for now (no tax engine); the field is part of the total. */
  taxMinor: bigint;
  totalMinor: bigint;
  provider: 'manual' | 'stripe';
  providerInvoiceId: string | null;
  pushState: string;
  finalizedAt: Date | null;
  paidAt: Date | null;
  createdAt: Date;
  lines: InvoiceLine[];
}

interface InvoiceRow {
  id: string;
  number: string;
  kind: 'invoice' | 'credit_note';
  corrects_invoice_id: string | null;
  team_id: string;
  team_name: string;
  subscription_id: string;
  period_start: Date;
  period_end: Date;
  currency: string;
  status: InvoiceStatus;
  subtotal_minor: string;
  credits_applied_minor: string;
  tax_minor: string;
  total_minor: string;
  provider: 'manual' | 'stripe';
  provider_invoice_id: string | null;
  push_state: string;
  finalized_at: Date | null;
  paid_at: Date | null;
  created_at: Date;
}

const selectInvoice = `SELECT i.*, i.subtotal_minor::text AS subtotal_minor, i.credits_applied_minor::text AS credits_applied_minor,
    i.tax_minor::text AS tax_minor, i.total_minor::text AS total_minor, t.name AS team_name
  FROM invoices i JOIN teams t ON t.id = i.team_id`;

async function withLines(db: Queryable, rows: InvoiceRow[]): Promise<Invoice[]> {
  if (rows.length === 0) return [];
  const lines = await db.query<{
    id: string;
    invoice_id: string;
    position: number;
    kind: InvoiceLine['kind'];
    metric: string | null;
    quantity: string;
    unit_price: string;
    amount_minor: string;
    description: string;
    provider_item_id: string | null;
  }>(
    `SELECT id, invoice_id, position, kind, metric, quantity::text AS quantity, unit_price, amount_minor::text AS amount_minor,
       description, provider_item_id FROM invoice_lines WHERE invoice_id = ANY($1::uuid[]) ORDER BY position`,
    [rows.map((row) => row.id)],
  );
  return rows.map((row) => ({
    id: row.id,
    number: row.number,
    kind: row.kind,
    correctsInvoiceId: row.corrects_invoice_id,
    teamId: row.team_id,
    teamName: row.team_name,
    subscriptionId: row.subscription_id,
    periodStart: row.period_start,
    periodEnd: row.period_end,
    currency: row.currency.trim() as Currency,
    status: row.status,
    subtotalMinor: BigInt(row.subtotal_minor),
    creditsAppliedMinor: BigInt(row.credits_applied_minor),
    taxMinor: BigInt(row.tax_minor),
    totalMinor: BigInt(row.total_minor),
    provider: row.provider,
    providerInvoiceId: row.provider_invoice_id,
    pushState: row.push_state,
    finalizedAt: row.finalized_at,
    paidAt: row.paid_at,
    createdAt: row.created_at,
    lines: lines.rows
      .filter((line) => line.invoice_id === row.id)
      .map((line) => ({
        id: line.id,
        position: line.position,
        kind: line.kind,
        metric: line.metric,
        quantity: BigInt(line.quantity),
        unitPrice: line.unit_price,
        amountMinor: BigInt(line.amount_minor),
        description: line.description,
        providerItemId: line.provider_item_id,
      })),
  }));
}

/** A team's invoices and credit notes, newest first. */
export async function listInvoices(db: Queryable, teamId: string): Promise<Invoice[]> {
  const rows = await db.query<InvoiceRow>(
    `${selectInvoice} WHERE i.team_id = $1 ORDER BY i.created_at DESC, i.number DESC`,
    [teamId],
  );
  return withLines(db, rows.rows);
}

/** One invoice by id; with `teamId`, only that team's (another team's is not found). */
export async function getInvoice(db: Queryable, id: string, teamId?: string): Promise<Invoice> {
  const valid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
  const rows = valid
    ? await db.query<InvoiceRow>(`${selectInvoice} WHERE i.id = $1${teamId ? ' AND i.team_id = $2' : ''}`, [
        id,
        ...(teamId ? [teamId] : []),
      ])
    : { rows: [] };
  const [invoice] = await withLines(db, rows.rows);
  if (!invoice) throw new TollgateError('not_found', `invoice ${id} was not found`);
  return invoice;
}

/** The JSON of an invoice: amounts as strings of minor units plus their formatted text. */
export function invoiceBody(invoice: Invoice) {
  const money = (minor: bigint) => ({ minor: minor.toString(), formatted: formatMoney(minor, invoice.currency) });
  return {
    id: invoice.id,
    number: invoice.number,
    kind: invoice.kind,
    corrects_invoice_id: invoice.correctsInvoiceId,
    team_id: invoice.teamId,
    subscription_id: invoice.subscriptionId,
    period_start: invoice.periodStart.toISOString(),
    period_end: invoice.periodEnd.toISOString(),
    currency: invoice.currency,
    status: invoice.status,
    subtotal: money(invoice.subtotalMinor),
    credits_applied: money(invoice.creditsAppliedMinor),
    tax: money(invoice.taxMinor),
    total: money(invoice.totalMinor),
    provider: invoice.provider,
    provider_invoice_id: invoice.providerInvoiceId,
    finalized_at: invoice.finalizedAt?.toISOString() ?? null,
    paid_at: invoice.paidAt?.toISOString() ?? null,
    lines: invoice.lines.map((line) => ({
      id: line.id,
      kind: line.kind,
      metric: line.metric,
      quantity: line.quantity.toString(),
      unit_price: line.unitPrice,
      amount: money(line.amountMinor),
      description: line.description,
    })),
  };
}

type Actor = Pick<AuditEntryInput, 'actorUserId' | 'actorLabel' | 'ip' | 'userAgent' | 'requestId'>;

/**
 * An invoice is paid: status paid, the `invoice.paid` webhook, and the subscription's payment
 * recorded (a past_due subscription is active again). Paying a paid invoice changes nothing; a void
 * invoice or a credit note cannot be paid.
 */
export async function markInvoicePaid(
  options: SubscriptionServiceOptions,
  input: { invoiceId: string; at?: Date; actor: Actor },
): Promise<{ invoice: Invoice; changed: boolean }> {
  const at = input.at ?? (options.now ?? (() => new Date()))();
  const result = await options.database.transaction(async (tx) => {
    const found = await getInvoice(tx, input.invoiceId);
    // Paid once, whoever marks it (an operator, a Stripe event) and however often.
    await tx.query('SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE', [found.id]);
    const invoice = await getInvoice(tx, found.id);
    if (invoice.status === 'paid') return { invoice, changed: false };
    if (invoice.status !== 'open' || invoice.kind !== 'invoice') {
      throw new TollgateError(
        'invoice_not_payable',
        `invoice ${invoice.number} is ${invoice.status}: it cannot be paid`,
      );
    }
    await tx.query("UPDATE invoices SET status = 'paid', paid_at = $2 WHERE id = $1", [invoice.id, at]);
    await enqueueTeamEvent(tx, {
      teamId: invoice.teamId,
      type: 'invoice.paid',
      data: {
        invoice_id: invoice.id,
        number: invoice.number,
        currency: invoice.currency,
        total_minor: String(invoice.totalMinor),
      },
    });
    await appendAuditEntry(tx, {
      ...input.actor,
      outcome: 'success',
      teamId: invoice.teamId,
      action: 'invoice.paid',
      targetType: 'invoice',
      targetId: invoice.id,
      details: { number: invoice.number, total_minor: String(invoice.totalMinor), currency: invoice.currency },
    });
    return { invoice: await getInvoice(tx, invoice.id), changed: true };
  });
  if (result.changed) {
    const live = await options.database.query(
      "SELECT 1 FROM subscriptions WHERE team_id = $1 AND status <> 'canceled'",
      [result.invoice.teamId],
    );
    if (live.rows.length > 0) await recordSubscriptionPayment(options, { teamId: result.invoice.teamId, at });
  }
  return result;
}

/**
 * Corrects a finalized invoice: a credit note of `amount` (major units, at most what the invoice and
 * its earlier credit notes leave) with one negative line. The invoice itself stays as it was.
 */
export async function createCreditNote(
  database: Database,
  input: { invoiceId: string; amount: string; reason: string; actor: Actor; now?: Date },
): Promise<Invoice> {
  const reason = input.reason.trim();
  if (reason.length === 0 || reason.length > 500) {
    throw new TollgateError('validation_failed', 'reason: say why, in 1 to 500 characters', {
      details: { issues: [{ path: 'reason', message: 'must be 1 to 500 characters' }] },
    });
  }
  return database.transaction(async (tx) => {
    const invoice = await getInvoice(tx, input.invoiceId);
    // One credit note at a time per invoice, so two cannot together credit more than it totals.
    await tx.query('SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE', [invoice.id]);
    if (invoice.kind !== 'invoice' || invoice.status === 'draft' || invoice.status === 'void') {
      throw new TollgateError('invoice_not_payable', `invoice ${invoice.number} is ${invoice.status}: no credit note`);
    }
    const amount = parseAmount(input.amount, invoice.currency);
    const credited = await tx.query<{ credited: string }>(
      'SELECT coalesce(sum(-total_minor), 0)::text AS credited FROM invoices WHERE corrects_invoice_id = $1',
      [invoice.id],
    );
    const left = invoice.totalMinor - BigInt(credited.rows[0]?.credited ?? '0');
    if (amount <= 0n || amount > left) {
      throw new TollgateError(
        'validation_failed',
        `amount: a credit note of ${invoice.number} is more than 0 and at most ${formatMoney(left, invoice.currency)}`,
        { details: { issues: [{ path: 'amount', message: 'more than 0 and at most what is left to credit' }] } },
      );
    }
    const now = input.now ?? new Date();
    const created = await tx.query<{ id: string }>(
      `INSERT INTO invoices (team_id, subscription_id, kind, corrects_invoice_id, period_start, period_end, currency, status,
         subtotal_minor, credits_applied_minor, tax_minor, total_minor, provider, push_state)
       VALUES ($1, $2, 'credit_note', $3, $4, $5, $6, 'draft', $7, 0, 0, $7, 'manual', 'none') RETURNING id`,
      [
        invoice.teamId,
        invoice.subscriptionId,
        invoice.id,
        invoice.periodStart,
        invoice.periodEnd,
        invoice.currency,
        String(-amount),
      ],
    );
    const id = (created.rows[0] as { id: string }).id;
    await tx.query(
      `INSERT INTO invoice_lines (invoice_id, position, kind, quantity, unit_price, amount_minor, description)
       VALUES ($1, 0, 'credit', 1, $2, $3, $4)`,
      [id, formatMoney(-amount, invoice.currency), String(-amount), `Credit note for ${invoice.number}: ${reason}`],
    );
    // A credit note is settled when issued: it reduces what the team owes.
    await tx.query("UPDATE invoices SET status = 'paid', finalized_at = $2, paid_at = $2 WHERE id = $1", [id, now]);
    await appendAuditEntry(tx, {
      ...input.actor,
      outcome: 'success',
      teamId: invoice.teamId,
      action: 'invoice.credit_note',
      targetType: 'invoice',
      targetId: id,
      details: { corrects: invoice.number, amount_minor: String(amount), reason },
    });
    return getInvoice(tx, id);
  });
}

/**
 * What a provider says about the payment of one of our pushed invoices (Stripe's invoice.paid or
 * invoice.payment_failed), inside the event's transaction: paid marks it paid once and sends
 * invoice.paid. Returns the team and whether the invoice is ours, so the caller records the
 * subscription's payment or failure; undefined when the provider's invoice is not one of ours.
 */
export async function applyProviderInvoicePayment(
  tx: Queryable,
  input: { provider: 'stripe'; providerInvoiceId: string; paid: boolean; at: Date },
): Promise<{ teamId: string; invoiceId: string; changed: boolean } | undefined> {
  const found = await tx.query<{
    id: string;
    team_id: string;
    status: InvoiceStatus;
    number: string;
    currency: string;
    total_minor: string;
  }>(
    `SELECT id, team_id, status, number, currency, total_minor::text AS total_minor FROM invoices
     WHERE provider = $1 AND provider_invoice_id = $2 FOR UPDATE`,
    [input.provider, input.providerInvoiceId],
  );
  const invoice = found.rows[0];
  if (!invoice) return undefined;
  if (!input.paid || invoice.status !== 'open')
    return { teamId: invoice.team_id, invoiceId: invoice.id, changed: false };
  await tx.query("UPDATE invoices SET status = 'paid', paid_at = $2 WHERE id = $1", [invoice.id, input.at]);
  await enqueueTeamEvent(tx, {
    teamId: invoice.team_id,
    type: 'invoice.paid',
    data: {
      invoice_id: invoice.id,
      number: invoice.number,
      currency: invoice.currency.trim(),
      total_minor: invoice.total_minor,
    },
  });
  return { teamId: invoice.team_id, invoiceId: invoice.id, changed: true };
}
