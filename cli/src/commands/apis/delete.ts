import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';
import { confirmAction, requireConfirmationMeans } from '../../confirm-action.js';

export default class ApisDelete extends TollgateCommand<typeof ApisDelete> {
  static override summary = 'Delete an API (operators): the gateway stops serving it.';

  static override description =
    'Asks for confirmation on a terminal; without a terminal, pass --yes. While live API keys are limited to the API it is refused (api_in_use) unless --force: then those keys lose the API, and a key limited to it alone is revoked.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> weather',
    '<%= config.bin %> <%= command.id %> weather --yes --force',
  ];

  static override args = { api: Args.string({ description: 'Slug or id of the API', required: true }) };

  static override flags = {
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
    force: Flags.boolean({ description: 'Delete even if API keys are limited to it, revoking those left with no API' }),
  };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'the deletion' });
    await confirmAction({
      yes: this.flags.yes,
      question: `Delete the API ${this.args.api}? The gateway stops serving it at once.`,
    });
    const path = `/v1/apis/${encodeURIComponent(this.args.api)}${this.flags.force ? '?force=true' : ''}`;
    let deleted: { id: string; slug: string; revoked_key_ids: string[] };
    try {
      deleted = (await this.call('DELETE', path)) as typeof deleted;
    } catch (error) {
      if (error instanceof CliError && error.code === 'api_in_use') {
        throw new CliError(error.code, error.message, {
          hint: `limit those keys to other APIs or revoke them, or run again with --force to revoke the keys limited to ${this.args.api} alone`,
        });
      }
      throw error;
    }
    if (this.jsonMode) {
      this.outJson(deleted);
      return;
    }
    const revoked = deleted.revoked_key_ids.length;
    this.out(
      `Deleted the API ${deleted.slug}.${revoked > 0 ? ` Revoked ${revoked} key(s) that were limited to it alone.` : ''}`,
    );
  }
}
