import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type InvoiceDocument, invoiceFields } from '../../invoice-fields.js';
import { renderFields } from '../../output/fields.js';
import { teamFlag } from '../../team-flag.js';

export default class InvoicesShow extends TollgateCommand<typeof InvoicesShow> {
  static override summary = 'Show one invoice: its lines and totals.';

  static override description =
    'Every line (base fee, overage per metric, prorations, credits) rounded once, the subtotal, credits applied, tax and total. Needs billing:read (team admins).';

  static override examples = ['<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7'];

  static override args = { id: Args.string({ description: 'Id of the invoice', required: true }) };

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const invoice = (await this.call(
      'GET',
      `/v1/teams/${encodeURIComponent(team)}/invoices/${encodeURIComponent(this.args.id)}`,
    )) as InvoiceDocument;
    if (this.jsonMode) this.outJson(invoice);
    else this.out(renderFields(invoiceFields(invoice), { tty: process.stdout.isTTY === true }));
  }
}
