import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class TokensRevoke extends TollgateCommand<typeof TokensRevoke> {
  static override summary = 'Revoke one of your personal access tokens; it stops working at once.';

  static override description =
    'Works signed in with a session or with any of your tokens, the one being revoked included. An id that is not one of your live tokens fails with not_found.';

  static override examples = ['<%= config.bin %> <%= command.id %> 0b6f2c4e-...'];

  static override args = {
    id: Args.string({ description: 'Token id (from `tollgate tokens list`)', required: true }),
  };

  async run(): Promise<void> {
    await this.call('DELETE', `/v1/me/tokens/${encodeURIComponent(this.args.id)}`);
    if (this.jsonMode) this.outJson({ revoked: this.args.id });
    else this.out(`Revoked the personal access token ${this.args.id}.`);
  }
}
