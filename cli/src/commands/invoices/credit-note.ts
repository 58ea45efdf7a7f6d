import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import type { InvoiceDocument } from '../../invoice-fields.js';

export default class InvoicesCreditNote extends TollgateCommand<typeof InvoicesCreditNote> {
  static override summary = 'Correct a finalized invoice with a credit note (operators).';

  static override description =
    'A finalized invoice never changes: a correction is a credit note of --amount (in the invoice currency, at most what the invoice and its earlier credit notes leave), with one negative line and the reason. When the invoice was pushed to Stripe the credit note is created there too (idempotency key from its id; a failed push is retried by the period close). Needs the operator permission billing:operate.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7 --amount 10.00 --reason "outage on March 3"',
  ];

  static override args = { id: Args.string({ description: 'Id of the invoice to correct', required: true }) };

  static override flags = {
    amount: Flags.string({
      description: 'How much to credit, in major units of the invoice currency ("10", "12.50")',
      required: true,
    }),
    reason: Flags.string({
      description: 'Why (1 to 500 characters): on the credit note and in the audit log',
      required: true,
    }),
  };

  async run(): Promise<void> {
    const note = (await this.call('POST', `/v1/invoices/${encodeURIComponent(this.args.id)}/credit-notes`, {
      amount: this.flags.amount,
      reason: this.flags.reason,
    })) as InvoiceDocument;
    if (this.jsonMode) this.outJson(note);
    else this.out(`Credit note ${note.number} for ${note.total.formatted} issued (id ${note.id}).`);
  }
}
