import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class SessionsRevoke extends TollgateCommand<typeof SessionsRevoke> {
  static override summary = 'End one of your sessions, or all of them with --all.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 5f0c1d2e-...',
    '<%= config.bin %> <%= command.id %> --all',
  ];

  static override args = { id: Args.string({ description: 'Session id (from `tollgate sessions list`)' }) };

  static override flags = {
    all: Flags.boolean({ description: 'End every session, this one included (log out everywhere)' }),
  };

  async run(): Promise<void> {
    if (Boolean(this.flags.all) === (this.args.id !== undefined)) {
      throw new CliError('usage_error', 'give a session id or --all, not both and not neither', {
        exitCode: exitCodes.usage,
        hint: 'see tollgate sessions list',
      });
    }
    if (this.flags.all) {
      const { revoked } = (await this.call('POST', '/v1/auth/logout-everywhere')) as { revoked: number };
      const { deleteCredentials } = await import('../../credentials.js');
      await deleteCredentials(this.flags.profile);
      if (this.jsonMode) this.outJson({ revoked });
      else this.out(`Ended ${revoked} session(s); log in again to continue.`);
      return;
    }
    await this.call('DELETE', `/v1/sessions/${encodeURIComponent(this.args.id ?? '')}`);
    if (this.jsonMode) this.outJson({ revoked: 1, id: this.args.id });
    else this.out(`Ended session ${this.args.id}.`);
  }
}
