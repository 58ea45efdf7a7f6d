import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import type { InvoiceDocument } from '../../invoice-fields.js';

export default class InvoicesMarkPaid extends TollgateCommand<typeof InvoicesMarkPaid> {
  static override summary = 'Mark an open invoice paid (operators, the manual provider).';

  static override description =
    'For installations without Stripe: record that the team paid an open invoice (by bank transfer, for example). Sends the invoice.paid webhook event; a past_due or unpaid subscription is active again, and its API keys served again within seconds, once no other invoice of the team is overdue. Marking a paid invoice paid changes nothing. A void invoice or a credit note cannot be paid (invoice_not_payable). Needs the operator permission billing:operate.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7',
    '<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7 --json',
  ];

  static override args = { id: Args.string({ description: 'Id of the invoice', required: true }) };

  async run(): Promise<void> {
    const invoice = (await this.call(
      'POST',
      `/v1/invoices/${encodeURIComponent(this.args.id)}/mark-paid`,
      {},
    )) as InvoiceDocument;
    if (this.jsonMode) this.outJson(invoice);
    else this.out(`Invoice ${invoice.number} is paid (${invoice.total.formatted}, ${invoice.paid_at ?? '-'}).`);
  }
}
