import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import type { InvoiceDocument } from '../../invoice-fields.js';

export default class InvoicesVoid extends TollgateCommand<typeof InvoicesVoid> {
  static override summary = 'Void an open invoice (operators): nothing is owed for it any more.';

  static override description =
    'Only an open invoice can be voided; a paid one is corrected with a credit note instead (invoice_not_voidable). Voiding gives back the prepaid credits the invoice used, voids it at Stripe too when it was pushed there, sends the invoice.voided webhook event, and makes a past_due subscription active again when no other invoice of the team is overdue. Voiding a void invoice changes nothing. Needs the operator permission billing:operate.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7 --reason "billed twice"',
    '<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7 --json',
  ];

  static override args = { id: Args.string({ description: 'Id of the invoice', required: true }) };

  static override flags = {
    reason: Flags.string({
      description: 'Why: kept on the invoice, in the audit log and the webhook (1 to 500 characters)',
    }),
  };

  async run(): Promise<void> {
    const body = this.flags.reason === undefined ? {} : { reason: this.flags.reason };
    const invoice = (await this.call(
      'POST',
      `/v1/invoices/${encodeURIComponent(this.args.id)}/void`,
      body,
    )) as InvoiceDocument & { voided_at: string | null; void_reason: string | null };
    if (this.jsonMode) this.outJson(invoice);
    else
      this.out(
        `Invoice ${invoice.number} is void (since ${invoice.voided_at ?? '-'})${invoice.void_reason ? `: ${invoice.void_reason}` : ''}.`,
      );
  }
}
