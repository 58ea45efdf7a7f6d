import { randomUUID } from 'node:crypto';
import { loadPeriodUsage } from '../alerts/period-usage.js';
import { consumeCredits } from '../credits/credit-ledger.js';
import type { Job } from '../jobs/job-runner.js';
import { createLogger, type Logger } from '../logging/logger.js';
import type { BillingInterval, PlanOverage } from '../plans/plan-schemas.js';
import type { TeamPolicyEvents } from '../plans/team-policy-events.js';
import type { Database, Queryable } from '../storage/database.js';
import { enqueueTeamEvent } from '../webhooks/webhook-events.js';
import { type BillingProvider, cycleBoundaryAfter } from './billing-provider.js';
import { pushPendingCreditNotes } from './invoices.js';
import { formatMoney } from './money.js';
import { rateLine } from './pricing.js';
import type { Currency, MeteredPrice } from './pricing-schema.js';
import { runSubscriptionLifecycle } from './subscriptions.js';

/**
 * The period close (docs/billing.md, "Period close"). Subscriptions move into their next period
 * (the lifecycle job, or Stripe's renewal events); a trigger records every period they leave in
 * `billing_periods` (migration 0023). Closing one such period is one transaction: rate the base fee,
 * the overage of every priced metric under the plan version's model, the prorations Tollgate
 * collects, take credits for the overage, and store the invoice and its lines, open. Only then is
 * the invoice pushed to the provider, step by step, each step recorded with the idempotency key it
 * used, so a rerun after a crash resumes where the last run stopped and never duplicates an item.
 */

export interface CloseBillingPeriodOptions {
  now: Date;
  provider: BillingProvider;
  /** TOLLGATE_BILLING_PAYMENT_TERMS_DAYS: a manual invoice is due this many days after it is finalized (14). */
  paymentTermsDays?: number | undefined;
  /** TOLLGATE_BILLING_GRACE_DAYS, for the lifecycle run that opens the close (7). */
  graceDays?: number | undefined;
  logger?: Logger;
  teamPolicyEvents?: Pick<TeamPolicyEvents, 'publishInvalidation'> | undefined;
  /**
   * Called after each durable step (`stored` once an invoice is committed, `item` after each pushed
   * line): a test throws here to play a crash at that point.
   */
  afterStep?: (step: 'stored' | 'item', invoiceId: string) => void;
}

export interface CloseBillingPeriodReport {
  /** Invoices stored by this run. */
  invoiced: number;
  /** Ended trial periods (free: no invoice). */
  trials: number;
  /** Invoices whose push to the provider this run completed. */
  pushed: number;
  /** Invoices whose push failed (retried by the next run). */
  pushFailed: number;
}

interface PeriodRow {
  subscription_id: string;
  team_id: string;
  plan_id: string;
  currency: Currency;
  billing_interval: 'month' | 'year';
  provider: 'manual' | 'stripe';
  amount_minor: string;
  was_trial: boolean;
  period_start: Date;
  period_end: Date;
  cycle_anchor_at: Date;
}

interface PlanTermsRow {
  slug: string;
  name: string;
  version: number;
  monthly_call_quota: string | null;
  included_quotas: Record<string, number | null>;
  overage_prices: PlanOverage;
}

/** One line before it is stored. */
interface DraftLine {
  kind: 'base_fee' | 'overage' | 'proration' | 'credit';
  metric: string | null;
  quantity: bigint;
  unitPrice: string;
  /** minor units, rounded once for the line */
  amountMinor: bigint;
  description: string;
}

const isoDay = (date: Date) => date.toISOString().slice(0, 10);

/**
 * The usage months of a billing period: included quotas are monthly, and the gateway, quota status
 * and usage alerts count them in months from the team's billing anchor, which follows the cycle's
 * anchor (migration 0029). A monthly period is one usage month; an annual one is twelve, each rated
 * on its own against the monthly quota (docs/billing.md "Billing cycles and usage months"); a period
 * cut short (a cancel, an interval change) ends with a partial month.
 */
export function usageMonths(period: {
  period_start: Date;
  period_end: Date;
  cycle_anchor_at: Date;
  billing_interval: BillingInterval;
}): {
  start: Date;
  end: Date;
}[] {
  if (period.billing_interval === 'month') return [{ start: period.period_start, end: period.period_end }];
  const months: { start: Date; end: Date }[] = [];
  let start = period.period_start;
  while (start < period.period_end) {
    const boundary = cycleBoundaryAfter(period.cycle_anchor_at, start, 'month');
    const end = boundary.getTime() < period.period_end.getTime() ? boundary : period.period_end;
    months.push({ start, end });
    start = end;
  }
  return months;
}

/** A price as the invoice line shows it: the unit price, or the model with its tiers. */
function describePrice(price: MeteredPrice): string {
  switch (price.model) {
    case 'per_unit':
      return price.unit_price;
    case 'package':
      return `${price.package_price} per ${price.package_size}`;
    default:
      return `${price.model}: ${price.tiers.map((tier) => `${tier.unit_price} up to ${tier.up_to ?? '∞'}`).join(', ')}`;
  }
}

/** Closes every period that has ended by `now`, then pushes every invoice not yet at its provider. */
export async function closeBillingPeriod(
  database: Database,
  options: CloseBillingPeriodOptions,
): Promise<CloseBillingPeriodReport> {
  const report: CloseBillingPeriodReport = { invoiced: 0, trials: 0, pushed: 0, pushFailed: 0 };
  const logger = options.logger;
  // Move subscriptions whose period ended into the next one: the trigger records the ended period.
  await runSubscriptionLifecycle({
    database,
    now: () => options.now,
    graceDays: options.graceDays,
    teamPolicyEvents: options.teamPolicyEvents,
    logger: logger ?? silent,
  });
  const due = await database.query<{ subscription_id: string; period_start: Date }>(
    `SELECT subscription_id, period_start FROM billing_periods
     WHERE closed_at IS NULL AND period_end <= $1 ORDER BY period_end LIMIT 1000`,
    [options.now],
  );
  for (const period of due.rows) {
    const stored = await database.transaction((tx) =>
      closeOnePeriod(tx, period, options.now, options.paymentTermsDays ?? 14),
    );
    if (stored === 'trial') report.trials++;
    else if (stored) {
      report.invoiced++;
      options.afterStep?.('stored', stored);
    }
  }
  const unpushed = await database.query<{ id: string }>(
    `SELECT id FROM invoices WHERE provider = $1 AND kind = 'invoice' AND status <> 'void'
       AND push_state IN ('pending', 'invoice_created', 'items_pushed')
     ORDER BY created_at`,
    [options.provider.name],
  );
  for (const { id } of unpushed.rows) {
    try {
      await pushInvoice(database, id, options);
      report.pushed++;
    } catch (error) {
      if (options.afterStep) throw error;
      report.pushFailed++;
      logger?.warn({ err: error, invoiceId: id }, 'invoice push failed; the next period close resumes it');
    }
  }
  // Credit notes of pushed invoices whose own push failed or waited for the invoice's.
  if (options.provider.invoices) {
    await pushPendingCreditNotes(database, options.provider, (error, creditNoteId) =>
      logger?.warn({ err: error, creditNoteId }, 'credit note push failed; the next period close retries it'),
    );
  }
  return report;
}

const silent = createLogger({ level: 'silent' });

/** Stores the invoice of one ended period: its id, 'trial' for a free trial period, null when already done. */
async function closeOnePeriod(
  tx: Queryable,
  key: { subscription_id: string; period_start: Date },
  now: Date,
  paymentTermsDays: number,
): Promise<string | 'trial' | null> {
  const locked = await tx.query<PeriodRow & { closed_at: Date | null }>(
    `SELECT *, amount_minor::text AS amount_minor FROM billing_periods
     WHERE subscription_id = $1 AND period_start = $2 FOR UPDATE`,
    [key.subscription_id, key.period_start],
  );
  const period = locked.rows[0];
  if (!period || period.closed_at) return null;
  const markClosed = () =>
    tx.query('UPDATE billing_periods SET closed_at = $3 WHERE subscription_id = $1 AND period_start = $2', [
      key.subscription_id,
      key.period_start,
      now,
    ]);
  if (period.was_trial) {
    await markClosed();
    return 'trial';
  }
  const existing = await tx.query(
    "SELECT 1 FROM invoices WHERE subscription_id = $1 AND period_start = $2 AND kind = 'invoice'",
    [key.subscription_id, key.period_start],
  );
  if (existing.rows.length > 0) {
    await markClosed();
    return null;
  }
  const planResult = await tx.query<PlanTermsRow>(
    `SELECT slug, name, version, monthly_call_quota::text AS monthly_call_quota, included_quotas, overage_prices
     FROM plans WHERE id = $1`,
    [period.plan_id],
  );
  const plan = planResult.rows[0];
  if (!plan) throw new Error(`plan ${period.plan_id} of subscription ${period.subscription_id} is missing`);
  const currency = period.currency.trim() as Currency;
  const invoiceId = randomUUID();
  const lines: DraftLine[] = [];

  // The base fee. A Stripe subscription's fee is charged by Stripe's own subscription invoice.
  const baseFee = BigInt(period.amount_minor);
  if (period.provider === 'manual' && baseFee > 0n) {
    lines.push({
      kind: 'base_fee',
      metric: null,
      quantity: 1n,
      unitPrice: formatMoney(baseFee, currency),
      amountMinor: baseFee,
      description: `${plan.name} (v${plan.version}), ${period.billing_interval === 'year' ? 'annual' : 'monthly'} fee, ${isoDay(period.period_start)} to ${isoDay(period.period_end)}`,
    });
  }

  // Overage per priced metric and usage month, after the metric's own credits (units) are taken.
  const priced = Object.entries(plan.overage_prices ?? {})
    .map(([metric, prices]) => ({ metric, price: prices[currency] }))
    .filter((entry): entry is { metric: string; price: MeteredPrice } => entry.price !== undefined)
    .sort((a, b) => a.metric.localeCompare(b.metric));
  const months = usageMonths(period);
  for (const [index, month] of months.entries()) {
    const used = await loadPeriodUsage(tx, {
      teamId: period.team_id,
      period: month,
      metrics: priced.map((entry) => entry.metric),
    });
    const monthKey = months.length === 1 ? '' : `:${month.start.toISOString()}`;
    for (const { metric, price } of priced) {
      const included =
        metric === 'calls'
          ? plan.monthly_call_quota === null
            ? null
            : BigInt(plan.monthly_call_quota)
          : plan.included_quotas?.[metric] === undefined || plan.included_quotas[metric] === null
            ? null
            : BigInt(plan.included_quotas[metric] as number);
      let usedUnits = used.get(metric) ?? 0n;
      const over = included === null ? 0n : usedUnits > included ? usedUnits - included : 0n;
      if (over > 0n) {
        // Both consumptions carry the reference `invoice:<id>`: voiding the invoice gives back exactly
        // those (voidInvoice in invoices.ts, one consumption_reversal each).
        const unitCredits = await consumeCredits(tx, {
          teamId: period.team_id,
          pool: { metric },
          wanted: over,
          reference: `invoice:${invoiceId}`,
          idempotencyKey: `invoice:${invoiceId}:${metric}${monthKey}`,
          now,
        });
        usedUnits -= unitCredits.taken;
      }
      const line = rateLine({ price, used: usedUnits, included, currency });
      if (line.units === 0n) continue;
      const inMonth =
        months.length === 1 ? '' : ` in the month from ${isoDay(month.start)} (${index + 1} of ${months.length})`;
      lines.push({
        kind: 'overage',
        metric,
        quantity: line.units,
        unitPrice: describePrice(price),
        amountMinor: line.amountMinor,
        description: `${metric} beyond the ${included?.toString() ?? 'unlimited'} included${inMonth}: ${line.units} units`,
      });
    }
  }

  // Prorations of upgrades that Tollgate collects (Stripe-collected ones are Stripe's to bill).
  const prorations = await tx.query<{ id: string; net_minor: string; changed_at: Date }>(
    `SELECT id, net_minor::text AS net_minor, changed_at FROM subscription_prorations
     WHERE subscription_id = $1 AND collected_by = 'tollgate' AND invoiced_at IS NULL AND changed_at < $2
     ORDER BY changed_at FOR UPDATE`,
    [period.subscription_id, period.period_end],
  );
  for (const proration of prorations.rows) {
    const amount = BigInt(proration.net_minor);
    lines.push({
      kind: 'proration',
      metric: null,
      quantity: 1n,
      unitPrice: formatMoney(amount, currency),
      amountMinor: amount,
      description: `Plan change on ${isoDay(proration.changed_at)}, prorated`,
    });
  }
  if (prorations.rows.length > 0) {
    await tx.query('UPDATE subscription_prorations SET invoiced_at = $2 WHERE id = ANY($1::uuid[])', [
      prorations.rows.map((row) => row.id),
      now,
    ]);
  }

  // Money credits pay for the overage before anything is invoiced.
  const overageMinor = lines
    .filter((line) => line.kind === 'overage')
    .reduce((sum, line) => sum + line.amountMinor, 0n);
  let creditsMinor = 0n;
  if (overageMinor > 0n) {
    const taken = await consumeCredits(tx, {
      teamId: period.team_id,
      pool: { currency },
      wanted: overageMinor,
      reference: `invoice:${invoiceId}`,
      idempotencyKey: `invoice:${invoiceId}:${currency}`,
      now,
    });
    creditsMinor = taken.taken;
    if (creditsMinor > 0n) {
      lines.push({
        kind: 'credit',
        metric: null,
        quantity: 1n,
        unitPrice: formatMoney(-creditsMinor, currency),
        amountMinor: -creditsMinor,
        description: 'Prepaid credits applied to the overage',
      });
    }
  }

  const subtotal = lines.filter((line) => line.kind !== 'credit').reduce((sum, line) => sum + line.amountMinor, 0n);
  const total = subtotal - creditsMinor;
  const pushed = period.provider === 'stripe' && total !== 0n;
  const inserted = await tx.query<{ number: string }>(
    `INSERT INTO invoices (id, team_id, subscription_id, period_start, period_end, currency, status, subtotal_minor,
       credits_applied_minor, tax_minor, total_minor, provider, push_state)
     VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8, 0, $9, $10, $11) RETURNING number`,
    [
      invoiceId,
      period.team_id,
      period.subscription_id,
      period.period_start,
      period.period_end,
      currency,
      String(subtotal),
      String(creditsMinor),
      String(total),
      period.provider,
      pushed ? 'pending' : 'none',
    ],
  );
  for (const [position, line] of lines.entries()) {
    await tx.query(
      `INSERT INTO invoice_lines (invoice_id, position, kind, metric, quantity, unit_price, amount_minor, description)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        invoiceId,
        position,
        line.kind,
        line.metric,
        String(line.quantity),
        line.unitPrice,
        String(line.amountMinor),
        line.description,
      ],
    );
  }
  // Finalized at once: from here the invoice is immutable. Nothing to pay is paid.
  // A manual invoice is due after the payment terms; Stripe collects its own (due when a payment fails).
  const status = total <= 0n ? 'paid' : 'open';
  const dueAt =
    status === 'open' && period.provider === 'manual' ? new Date(now.getTime() + paymentTermsDays * 86_400_000) : null;
  await tx.query(`UPDATE invoices SET status = $2, finalized_at = $3, paid_at = $4, due_at = $5 WHERE id = $1`, [
    invoiceId,
    status,
    now,
    status === 'paid' ? now : null,
    dueAt,
  ]);
  await markClosed();
  await enqueueTeamEvent(tx, {
    teamId: period.team_id,
    type: 'invoice.finalized',
    data: {
      invoice_id: invoiceId,
      number: inserted.rows[0]?.number,
      currency,
      total_minor: String(total),
      period_start: period.period_start.toISOString(),
      period_end: period.period_end.toISOString(),
    },
  });
  return invoiceId;
}

interface PushRow {
  team_id: string;
  team_name: string;
  currency: Currency;
  number: string;
  provider_invoice_id: string | null;
  push_state: 'pending' | 'invoice_created' | 'items_pushed' | 'finalized' | 'none';
}

/** Pushes one stored invoice to the provider, resuming after the last recorded step. */
async function pushInvoice(database: Database, invoiceId: string, options: CloseBillingPeriodOptions): Promise<void> {
  const invoices = options.provider.invoices;
  if (!invoices) return;
  const loaded = await database.query<PushRow>(
    `SELECT i.team_id, t.name AS team_name, i.currency, i.number, i.provider_invoice_id, i.push_state
     FROM invoices i JOIN teams t ON t.id = i.team_id WHERE i.id = $1`,
    [invoiceId],
  );
  const invoice = loaded.rows[0];
  if (!invoice) return;
  const currency = invoice.currency.trim() as Currency;
  const customerId = await options.provider.ensureCustomer(database, { id: invoice.team_id, name: invoice.team_name });
  if (!customerId) throw new Error(`no ${options.provider.name} customer for team ${invoice.team_id}`);
  let providerInvoiceId = invoice.provider_invoice_id;
  if (invoice.push_state === 'pending' || !providerInvoiceId) {
    providerInvoiceId = await invoices.createInvoice({ invoiceId, customerId, currency, number: invoice.number });
    await database.query("UPDATE invoices SET provider_invoice_id = $2, push_state = 'invoice_created' WHERE id = $1", [
      invoiceId,
      providerInvoiceId,
    ]);
  }
  if (invoice.push_state === 'pending' || invoice.push_state === 'invoice_created') {
    const lines = await database.query<{ id: string; amount_minor: string; description: string }>(
      `SELECT id, amount_minor::text AS amount_minor, description FROM invoice_lines
       WHERE invoice_id = $1 AND pushed_at IS NULL AND amount_minor <> 0 ORDER BY position`,
      [invoiceId],
    );
    for (const line of lines.rows) {
      const item = await invoices.addItem({
        lineId: line.id,
        customerId,
        providerInvoiceId,
        currency,
        amountMinor: BigInt(line.amount_minor),
        description: line.description,
      });
      await database.query(
        'UPDATE invoice_lines SET provider_item_id = $2, push_idempotency_key = $3, pushed_at = now() WHERE id = $1',
        [line.id, item.itemId, item.idempotencyKey],
      );
      options.afterStep?.('item', invoiceId);
    }
    await database.query("UPDATE invoices SET push_state = 'items_pushed' WHERE id = $1", [invoiceId]);
  }
  await invoices.finalize({ invoiceId, providerInvoiceId });
  await database.query("UPDATE invoices SET push_state = 'finalized' WHERE id = $1", [invoiceId]);
}

/** The worker job that closes ended periods every minute. */
export function periodCloseJob(options: {
  database: Database;
  provider: BillingProvider;
  paymentTermsDays?: number | undefined;
  graceDays?: number | undefined;
  logger: Logger;
  teamPolicyEvents?: Pick<TeamPolicyEvents, 'publishInvalidation'> | undefined;
}): Job {
  return {
    name: 'billing-period-close',
    intervalMs: 60_000,
    async run() {
      const report = await closeBillingPeriod(options.database, { ...options, now: new Date() });
      if (report.invoiced + report.pushed + report.pushFailed > 0) {
        options.logger.info({ job: 'billing-period-close', ...report }, 'billing periods closed');
      }
    },
  };
}
