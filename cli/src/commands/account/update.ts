import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface Account {
  id: string;
  email: string;
  name: string | null;
}

export default class AccountUpdate extends TollgateCommand<typeof AccountUpdate> {
  static override summary = 'Change your profile: your name.';

  static override description =
    'Sends PATCH /v1/me. The email address changes with `tollgate account email`, the password with `tollgate account password`. Giving nothing to change is a usage error (exit 2).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --name "Ada Lovelace"',
    '<%= config.bin %> <%= command.id %> --clear-name',
  ];

  static override flags = {
    name: Flags.string({ description: 'Your new name (1 to 200 characters)', env: 'TOLLGATE_NAME' }),
    'clear-name': Flags.boolean({ description: 'Remove your name', exclusive: ['name'] }),
  };

  async run(): Promise<void> {
    if (this.flags.name === undefined && !this.flags['clear-name']) {
      throw new CliError('usage_error', 'nothing to change', {
        hint: 'pass --name "<your name>" or --clear-name',
        exitCode: exitCodes.usage,
      });
    }
    const name = this.flags['clear-name'] ? null : (this.flags.name ?? null);
    const account = (await this.call('PATCH', '/v1/me', { name })) as Account;
    if (this.jsonMode) this.outJson(account);
    else
      this.out(account.name === null ? `Removed the name of ${account.email}.` : `Your name is now ${account.name}.`);
  }
}
