import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';
import { confirmAction, requireConfirmationMeans } from '../../../confirm-action.js';
import type { CreditPackDocument } from '../../../credit-fields.js';

export default class CreditsPacksArchive extends TollgateCommand<typeof CreditsPacksArchive> {
  static override summary = 'Archive a credit pack (operators): no longer offered.';

  static override description =
    'Purchases already paid for are still granted, and credits already held stay. Asks for confirmation on a terminal; without a terminal, pass --yes. Needs credits:manage.';

  static override examples = ['<%= config.bin %> <%= command.id %> million-calls --yes'];

  static override args = { pack: Args.string({ description: 'Slug of the pack', required: true }) };

  static override flags = { yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }) };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'archiving the pack' });
    await confirmAction({ yes: this.flags.yes, question: `Archive the credit pack ${this.args.pack}?` });
    const pack = (await this.call(
      'POST',
      `/v1/credit-packs/${encodeURIComponent(this.args.pack)}/archive`,
    )) as CreditPackDocument;
    if (this.jsonMode) this.outJson(pack);
    else this.out(`Archived the credit pack ${pack.slug}: no longer offered.`);
  }
}
