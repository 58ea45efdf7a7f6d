import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class AccountDelete extends TollgateCommand<typeof AccountDelete> {
  static override summary = 'Delete your account and erase your personal data.';

  static override description =
    'Your name, email, password, second factors, sessions and memberships are erased; invoices and audit entries stay, naming you only by your account id (docs/privacy.md). Transfer the teams you own first. Without a terminal, pass --confirm with your email and the password on standard input.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --confirm ada@example.com --password-stdin',
  ];

  static override flags = {
    confirm: Flags.string({ description: 'Your email address, to confirm' }),
    'password-stdin': Flags.boolean({ description: 'Read the password from standard input' }),
  };

  async run(): Promise<void> {
    const { ask, readStdin } = await import('../../prompt.js');
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;
    const me = (await this.call('GET', '/v1/me')) as { email: string };
    let confirm = this.flags.confirm;
    if (!confirm) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to confirm the deletion', {
          hint: 'pass --confirm <your email>',
          exitCode: exitCodes.usage,
        });
      }
      this.note(`This erases the account ${me.email} for good.`);
      confirm = (await ask('Type your email address to confirm: ')).trim();
    }
    let password = process.env.TOLLGATE_PASSWORD;
    if (this.flags['password-stdin']) password = await readStdin();
    if (password === undefined && tty)
      password = await ask('Password (empty if the account has none): ', { hidden: true });
    await this.call('DELETE', '/v1/me', { confirm, ...(password ? { password } : {}) });
    const { deleteCredentials } = await import('../../credentials.js');
    await deleteCredentials(this.flags.profile);
    if (this.jsonMode) this.outJson({ deleted: me.email });
    else this.out(`Deleted the account ${me.email}.`);
  }
}
