import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';
import type { CreditPackDocument } from '../../../credit-fields.js';
import { renderTable } from '../../../output/table.js';

export default class CreditsPacksList extends TollgateCommand<typeof CreditsPacksList> {
  static override summary = 'List the credit packs on offer.';

  static override description =
    'Everyone signed in sees the packs: slug, name, prices and what each grants. With --json: {"packs": [...]}.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --archived --json',
  ];

  static override flags = { archived: Flags.boolean({ description: 'Include archived packs' }) };

  async run(): Promise<void> {
    const answer = (await this.call('GET', `/v1/credit-packs${this.flags.archived ? '?archived=true' : ''}`)) as {
      packs: CreditPackDocument[];
    };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    if (answer.packs.length === 0) {
      this.note('No credit packs yet; an operator creates one with `tollgate credits packs create`.');
      return;
    }
    this.out(
      renderTable(
        answer.packs,
        [
          { header: 'slug', value: (pack) => pack.slug },
          { header: 'name', value: (pack) => pack.name },
          { header: 'prices', value: (pack) => pack.prices.map((p) => `${p.currency} ${p.amount}`).join(',') },
          { header: 'grants', value: (pack) => pack.grant.display },
          { header: 'valid', value: (pack) => (pack.validity_days === null ? 'forever' : `${pack.validity_days}d`) },
          { header: 'status', value: (pack) => (pack.archived_at ? 'archived' : 'active') },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
