import { writeFile } from 'node:fs/promises';
import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';
import { teamFlag } from '../../team-flag.js';

export default class InvoicesPdf extends TollgateCommand<typeof InvoicesPdf> {
  static override summary = 'Download an invoice as a PDF.';

  static override description =
    'Rendered from our stored invoice (not from Stripe). Written to --out, else to stdout when it is not a terminal. Needs billing:read (team admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 7c9e6679-7425-40de-944b-e07fc1f90ae7 --out invoice.pdf',
  ];

  static override args = { id: Args.string({ description: 'Id of the invoice', required: true }) };

  static override flags = {
    team: teamFlag,
    out: Flags.string({ description: 'File to write the PDF to', env: 'TOLLGATE_OUT' }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const path = `/v1/teams/${encodeURIComponent(team)}/invoices/${encodeURIComponent(this.args.id)}/pdf`;
    const session = await this.session();
    const response = await fetch(`${session.apiUrl}${path}`, {
      headers: { authorization: `Bearer ${session.token}`, 'user-agent': 'tollgate-cli' },
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined);
    if (response?.status !== 200 || !response.headers.get('content-type')?.startsWith('application/pdf')) {
      // The error answer, through the JSON client: `code: message` and its hint.
      await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/invoices/${encodeURIComponent(this.args.id)}`);
      throw new CliError('unexpected_response', `the API did not answer a PDF (${response?.status ?? 'no answer'})`);
    }
    const pdf = Buffer.from(await response.arrayBuffer());
    if (this.flags.out) {
      await writeFile(this.flags.out, pdf);
      if (this.jsonMode) this.outJson({ path: this.flags.out, bytes: pdf.length });
      else this.note(`Wrote ${this.flags.out} (${pdf.length} bytes).`);
      return;
    }
    if (process.stdout.isTTY || this.jsonMode) {
      throw new CliError('usage_error', 'a PDF is not written to a terminal or as JSON', {
        hint: 'pass --out invoice.pdf, or redirect stdout to a file',
        exitCode: 2,
      });
    }
    process.stdout.write(pdf);
  }
}
