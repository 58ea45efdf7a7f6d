import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class AccountUnlink extends TollgateCommand<typeof AccountUnlink> {
  static override summary = 'Unlink a provider account from yours.';

  static override description =
    'Refused (last_login_method) when it is your only way to log in: set a password or link another provider first.';

  static override examples = ['<%= config.bin %> <%= command.id %> 0b6f2d1e-8c1a-4a53-9d55-3f0e7a0c2b11'];

  static override args = {
    id: Args.string({ description: 'Identity id, from `tollgate account identities`', required: true }),
  };

  async run(): Promise<void> {
    await this.call('DELETE', `/v1/me/identities/${encodeURIComponent(this.args.id)}`);
    if (this.jsonMode) this.outJson({ unlinked: this.args.id });
    else this.out(`Unlinked ${this.args.id}.`);
  }
}
