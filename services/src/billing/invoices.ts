import { type AuditEntryInput, appendAuditEntry } from '../audit/audit-log.js';
import { reverseConsumption } from '../credits/credit-ledger.js';
import { TollgateError } from '../errors/tollgate-error.js';
import type { Database, Queryable } from '../storage/database.js';
import { enqueueTeamEvent } from '../webhooks/webhook-events.js';
import type { BillingProvider } from './billing-provider.js';
import { formatMoney, parseAmount } from './money.js';
import type { Currency } from './pricing-schema.js';
import {
  getSubscription,
  recordSubscriptionPayment,
  type SubscriptionActor,
  type SubscriptionServiceOptions,
} from './subscriptions.js';

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
  /** A credit note pushed to Stripe: its cn_... id. */
  providerCreditNoteId: string | null;
  pushState: string;
  finalizedAt: Date | null;
  /** When an open invoice must be paid: past it, the subscription is past due (docs/billing.md "Grace and 402"). */
  dueAt: Date | null;
  paidAt: Date | null;
  voidedAt: Date | null;
  voidReason: string | null;
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
  provider_credit_note_id: string | null;
  push_state: string;
  finalized_at: Date | null;
  due_at: Date | null;
  paid_at: Date | null;
  voided_at: Date | null;
  void_reason: string | null;
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
    providerCreditNoteId: row.provider_credit_note_id,
    pushState: row.push_state,
    finalizedAt: row.finalized_at,
    dueAt: row.due_at,
    paidAt: row.paid_at,
    voidedAt: row.voided_at,
    voidReason: row.void_reason,
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
    provider_credit_note_id: invoice.providerCreditNoteId,
    push_state: invoice.pushState,
    finalized_at: invoice.finalizedAt?.toISOString() ?? null,
    due_at: invoice.dueAt?.toISOString() ?? null,
    paid_at: invoice.paidAt?.toISOString() ?? null,
    voided_at: invoice.voidedAt?.toISOString() ?? null,
    void_reason: invoice.voidReason,
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
    // The credit note of an invoice pushed to a provider goes there too (pushCreditNote), once the
    // invoice's own push has finished.
    const pushed = invoice.provider !== 'manual' && invoice.pushState !== 'none';
    const created = await tx.query<{ id: string }>(
      `INSERT INTO invoices (team_id, subscription_id, kind, corrects_invoice_id, period_start, period_end, currency, status,
         subtotal_minor, credits_applied_minor, tax_minor, total_minor, provider, push_state)
       VALUES ($1, $2, 'credit_note', $3, $4, $5, $6, 'draft', $7, 0, 0, $7, $8, $9) RETURNING id`,
      [
        invoice.teamId,
        invoice.subscriptionId,
        invoice.id,
        invoice.periodStart,
        invoice.periodEnd,
        invoice.currency,
        String(-amount),
        pushed ? invoice.provider : 'manual',
        pushed ? 'pending' : 'none',
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
  if (!input.paid && invoice.status === 'open') {
    // A failed payment makes the invoice due now: while it stays open, paying another invoice does not
    // make the subscription paid up (recordSubscriptionPayment).
    await tx.query('UPDATE invoices SET due_at = coalesce(due_at, $2) WHERE id = $1', [invoice.id, input.at]);
  }
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

/**
 * Voids an open invoice (docs/billing.md "Voiding an invoice"): nothing is owed for it any more. In
 * one transaction with the invoice locked: the provider's copy is voided first when the invoice was
 * pushed (idempotency key `invoice-void:<our id>`, so a retry after a crash voids nothing twice), then
 * status void with voided_at and the reason, the credits its period close consumed given back to their
 * grants (`reverseConsumption`, once per consumption), the `invoice.voided` webhook event and the audit
 * entry. Voiding a void invoice answers it unchanged (`changed: false`). A paid invoice, a draft, a
 * credit note, one with credit notes, and one whose push to the provider is under way are refused
 * with `invoice_not_voidable`. Afterwards, a past_due or unpaid subscription whose team has no other
 * open invoice is paid up again (`recordSubscriptionPayment`).
 */
export async function voidInvoice(
  options: SubscriptionServiceOptions,
  input: { invoiceId: string; reason?: string | undefined; actor: Actor },
): Promise<{ invoice: Invoice; changed: boolean; restored: { pool: string; amount: bigint }[] }> {
  const reason = input.reason?.trim();
  if (reason !== undefined && (reason.length === 0 || reason.length > 500)) {
    throw new TollgateError('validation_failed', 'reason: 1 to 500 characters, or leave it out', {
      details: { issues: [{ path: 'reason', message: 'must be 1 to 500 characters' }] },
    });
  }
  const at = (options.now ?? (() => new Date()))();
  const result = await options.database.transaction(async (tx) => {
    const found = await getInvoice(tx, input.invoiceId);
    await tx.query('SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE', [found.id]);
    const invoice = await getInvoice(tx, found.id);
    if (invoice.status === 'void') return { invoice, changed: false, restored: [] };
    const refuse = (why: string, hint: string) =>
      // The HTTP error body carries the message only: what to do instead is part of it.
      new TollgateError('invoice_not_voidable', `invoice ${invoice.number} ${why}: it cannot be voided; ${hint}`, {
        hint,
      });
    if (invoice.kind === 'credit_note') {
      throw refuse('is a credit note', 'a credit note is settled when issued; issue none, or correct it with another');
    }
    if (invoice.status === 'paid') {
      throw refuse('is paid', `issue a credit note instead: POST /v1/invoices/${invoice.id}/credit-notes`);
    }
    if (invoice.status !== 'open') throw refuse(`is ${invoice.status}`, 'only an open invoice can be voided');
    const notes = await tx.query('SELECT 1 FROM invoices WHERE corrects_invoice_id = $1 LIMIT 1', [invoice.id]);
    if (notes.rows.length > 0) {
      throw refuse('has credit notes', 'credit what is left of it with another credit note instead');
    }
    if (invoice.pushState === 'invoice_created' || invoice.pushState === 'items_pushed') {
      throw refuse(
        `is still being pushed to ${invoice.provider}`,
        'run tollgate billing close-period to finish the push, then void it',
      );
    }
    if (invoice.pushState === 'finalized' && invoice.providerInvoiceId) {
      const provider = options.provider.invoices;
      if (!provider || options.provider.name !== invoice.provider) {
        throw new TollgateError(
          'provider_unavailable',
          `invoice ${invoice.number} is at ${invoice.provider}, which is not configured here`,
          { hint: 'void it where STRIPE_SECRET_KEY is set' },
        );
      }
      await provider.voidInvoice({ invoiceId: invoice.id, providerInvoiceId: invoice.providerInvoiceId });
    }
    // An invoice voided before its push began never reaches the provider.
    await tx.query(
      `UPDATE invoices SET status = 'void', voided_at = $2, void_reason = $3,
         push_state = CASE WHEN push_state = 'pending' THEN 'none' ELSE push_state END
       WHERE id = $1`,
      [invoice.id, at, reason ?? null],
    );
    const consumptions = await tx.query<{ id: string; pool: string }>(
      `SELECT id, pool FROM credit_entries WHERE team_id = $1 AND kind = 'consumption' AND reference = $2 AND delta < 0
       ORDER BY seq`,
      [invoice.teamId, `invoice:${invoice.id}`],
    );
    const restored: { pool: string; amount: bigint }[] = [];
    for (const consumption of consumptions.rows) {
      const reversal = await reverseConsumption(tx, {
        teamId: invoice.teamId,
        consumptionEntryId: consumption.id,
        reference: `invoice:${invoice.id}`,
        reason: `invoice ${invoice.number} voided`,
        idempotencyKey: `void:${consumption.id}`,
        createdByUserId: input.actor.actorUserId ?? null,
        now: at,
      });
      restored.push({ pool: consumption.pool, amount: reversal.restored });
    }
    await enqueueTeamEvent(tx, {
      teamId: invoice.teamId,
      type: 'invoice.voided',
      data: {
        invoice_id: invoice.id,
        number: invoice.number,
        currency: invoice.currency,
        total_minor: String(invoice.totalMinor),
        reason: reason ?? null,
      },
    });
    await appendAuditEntry(tx, {
      ...input.actor,
      outcome: 'success',
      teamId: invoice.teamId,
      action: 'invoice.voided',
      targetType: 'invoice',
      targetId: invoice.id,
      details: {
        number: invoice.number,
        total_minor: String(invoice.totalMinor),
        currency: invoice.currency,
        reason: reason ?? null,
        provider_invoice_id: invoice.providerInvoiceId,
        credits_restored: restored.map((entry) => ({ pool: entry.pool, amount_minor: String(entry.amount) })),
      },
    });
    return { invoice: await getInvoice(tx, invoice.id), changed: true, restored };
  });
  if (result.changed) await settleAfterVoid(options, result.invoice.teamId, at, input.actor);
  return result;
}

/**
 * A past_due or unpaid subscription is paid up once no invoice of the team is overdue (past its due
 * date, or its payment failed): recordSubscriptionPayment checks.
 */
async function settleAfterVoid(
  options: SubscriptionServiceOptions,
  teamId: string,
  at: Date,
  actor: SubscriptionActor,
): Promise<void> {
  const subscription = await getSubscription(options.database, teamId);
  if (!subscription || (subscription.status !== 'past_due' && subscription.status !== 'unpaid')) return;
  await recordSubscriptionPayment(options, { teamId, at, actor });
}

/**
 * Pushes one credit note to the provider of the invoice it corrects (docs/stripe.md "Credit notes"):
 * a Stripe credit note of the amount, idempotency key `credit-note:<our id>`, its id recorded with
 * push_state `finalized`. Waits (returns false) while the invoice's own push is unfinished; a crash
 * between the call and the update is repaired by the next run, which gets the same credit note back.
 */
export async function pushCreditNote(
  database: Database,
  provider: BillingProvider,
  creditNoteId: string,
): Promise<boolean> {
  const found = await database.query<{
    push_state: string;
    provider: string;
    total_minor: string;
    number: string;
    invoice_number: string;
    invoice_push_state: string;
    provider_invoice_id: string | null;
  }>(
    `SELECT n.push_state, n.provider, n.total_minor::text AS total_minor, n.number, i.number AS invoice_number,
       i.push_state AS invoice_push_state, i.provider_invoice_id
     FROM invoices n JOIN invoices i ON i.id = n.corrects_invoice_id WHERE n.id = $1 AND n.kind = 'credit_note'`,
    [creditNoteId],
  );
  const note = found.rows[0];
  if (note?.push_state !== 'pending') return false;
  if (note.provider !== provider.name || !provider.invoices) return false;
  if (note.invoice_push_state !== 'finalized' || !note.provider_invoice_id) return false;
  const providerCreditNoteId = await provider.invoices.createCreditNote({
    creditNoteId,
    providerInvoiceId: note.provider_invoice_id,
    amountMinor: -BigInt(note.total_minor),
    memo: `Tollgate credit note ${note.number} for ${note.invoice_number}`,
  });
  await database.query(
    `UPDATE invoices SET provider_credit_note_id = $2, push_state = 'finalized' WHERE id = $1 AND push_state = 'pending'`,
    [creditNoteId, providerCreditNoteId],
  );
  return true;
}

/** Pushes every credit note still pending at `provider` (the period close runs it): how many went, how many failed. */
export async function pushPendingCreditNotes(
  database: Database,
  provider: BillingProvider,
  onError: (error: unknown, creditNoteId: string) => void,
): Promise<{ pushed: number; failed: number }> {
  const pending = await database.query<{ id: string }>(
    `SELECT id FROM invoices WHERE kind = 'credit_note' AND provider = $1 AND push_state = 'pending' ORDER BY created_at`,
    [provider.name],
  );
  let pushed = 0;
  let failed = 0;
  for (const { id } of pending.rows) {
    try {
      if (await pushCreditNote(database, provider, id)) pushed++;
    } catch (error) {
      failed++;
      onError(error, id);
    }
  }
  return { pushed, failed };
}
