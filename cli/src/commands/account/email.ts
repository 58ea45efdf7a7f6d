import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface ConfirmationSent {
  status: 'confirmation_sent';
  email: string;
}

interface Account {
  id: string;
  email: string;
  email_verified: boolean;
}

export default class AccountEmail extends TollgateCommand<typeof AccountEmail> {
  static override summary =
    'Change your email address: have a confirmation email sent to the new one, then confirm with its token.';

  static override description =
    'With NEW-EMAIL, asks for the change (POST /v1/me/email): it needs your current password, and a tge_... token valid 24 hours is mailed to the new address. The answer is the same whether or not another account uses that address. With --token (the token from that email), switches the account to the new address (POST /v1/me/email/confirm); the old address is told. Both steps are signed in, as the same account. Without a terminal nothing is asked: pass the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> ada@new.example.com',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> ada@new.example.com --password-stdin',
    '<%= config.bin %> <%= command.id %> --token tge_...',
  ];

  static override args = {
    'new-email': Args.string({ description: 'The address to use from now on' }),
  };

  static override flags = {
    token: Flags.string({
      description: 'The token from the confirmation email: switch to the new address',
      env: 'TOLLGATE_EMAIL_TOKEN',
    }),
    'password-stdin': Flags.boolean({ description: 'Read your current password from standard input' }),
  };

  async run(): Promise<void> {
    const newEmail = this.args['new-email'];
    const token = this.flags.token?.trim();
    if ((newEmail === undefined) === (token === undefined)) {
      throw new CliError(
        'usage_error',
        newEmail === undefined
          ? 'give the new email address, or --token'
          : 'give the new email address or --token, not both',
        {
          hint: 'first `tollgate account email <new-email>`, then `tollgate account email --token <token>` with the token mailed to it',
          exitCode: exitCodes.usage,
        },
      );
    }
    if (token !== undefined) await this.confirm(token);
    else if (newEmail !== undefined) await this.request(newEmail.trim());
  }

  private async request(newEmail: string): Promise<void> {
    const { readPassword } = await import('../../read-password.js');
    const password = await readPassword({
      stdin: this.flags['password-stdin'],
      prompt: 'Current password: ',
      what: 'your current password',
    });
    const sent = (await this.call('POST', '/v1/me/email', { new_email: newEmail, password })) as ConfirmationSent;
    if (this.jsonMode) {
      this.outJson(sent);
      return;
    }
    this.out(`Sent a confirmation email to ${sent.email}.`);
    this.note(this.style('dim', 'Then run `tollgate account email --token <token>` with the token in it.', 'stderr'));
  }

  private async confirm(token: string): Promise<void> {
    const account = (await this.call('POST', '/v1/me/email/confirm', { token })) as Account;
    await this.rememberEmail(account);
    if (this.jsonMode) this.outJson(account);
    else this.out(`Your account now uses ${account.email}.`);
  }

  /** The stored session names the account by email (`tollgate auth status`): keep that name current. */
  private async rememberEmail(account: Account): Promise<void> {
    if (process.env.TOLLGATE_TOKEN) return;
    const { loadCredentials, withCredentialsLock, writeProfileCredentials } = await import('../../credentials.js');
    await withCredentialsLock(async () => {
      const stored = await loadCredentials(this.flags.profile);
      if (stored?.user.id !== account.id) return;
      await writeProfileCredentials(this.flags.profile, { ...stored, user: { ...stored.user, email: account.email } });
    });
  }
}
