/** An invoice as GET /v1/teams/:team/invoices/:id answers it. */
export interface InvoiceDocument {
  id: string;
  number: string;
  kind: 'invoice' | 'credit_note';
  corrects_invoice_id: string | null;
  period_start: string;
  period_end: string;
  currency: string;
  status: string;
  subtotal: { minor: string; formatted: string };
  credits_applied: { minor: string; formatted: string };
  tax: { minor: string; formatted: string };
  total: { minor: string; formatted: string };
  provider: string;
  finalized_at: string | null;
  due_at?: string | null;
  paid_at: string | null;
  lines: {
    id: string;
    kind: string;
    metric: string | null;
    quantity: string;
    unit_price: string;
    amount: { minor: string; formatted: string };
    description: string;
  }[];
}

/** The fields of `tollgate invoices show`, in order. */
export function invoiceFields(invoice: InvoiceDocument): [string, string][] {
  return [
    ['number', invoice.number],
    ['id', invoice.id],
    ['kind', invoice.kind === 'credit_note' ? `credit note for ${invoice.corrects_invoice_id}` : 'invoice'],
    ['status', invoice.status],
    ['period', `${invoice.period_start.slice(0, 10)} to ${invoice.period_end.slice(0, 10)}`],
    ...invoice.lines.map(
      (line, index) =>
        [
          `line ${index + 1}`,
          `${line.description} (${line.quantity} × ${line.unit_price}): ${line.amount.formatted}`,
        ] as [string, string],
    ),
    ['subtotal', invoice.subtotal.formatted],
    ['credits applied', invoice.credits_applied.formatted],
    ['tax', invoice.tax.formatted],
    ['total', invoice.total.formatted],
    ['provider', invoice.provider],
    ['finalized', invoice.finalized_at ?? '-'],
    ['due', invoice.due_at ?? '-'],
    ['paid', invoice.paid_at ?? '-'],
  ];
}
