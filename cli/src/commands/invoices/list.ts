import { TollgateCommand } from '../../base-command.js';
import type { InvoiceDocument } from '../../invoice-fields.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

export default class InvoicesList extends TollgateCommand<typeof InvoicesList> {
  static override summary = "List the team's invoices and credit notes, newest first.";

  static override description =
    'Number, period, status, total and id. Tab-separated when stdout is not a terminal. Needs billing:read (team admins).';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const body = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/invoices`)) as {
      invoices: InvoiceDocument[];
    };
    if (this.jsonMode) {
      this.outJson(body);
      return;
    }
    if (body.invoices.length === 0) {
      this.note('No invoices yet: the first one is issued when the first billing period ends.');
      return;
    }
    this.out(
      renderTable(
        body.invoices,
        [
          { header: 'number', value: (i) => (i.kind === 'credit_note' ? `${i.number} (credit note)` : i.number) },
          { header: 'period', value: (i) => `${i.period_start.slice(0, 10)}..${i.period_end.slice(0, 10)}` },
          { header: 'status', value: (i) => i.status },
          { header: 'total', value: (i) => i.total.formatted },
          { header: 'id', value: (i) => i.id },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
