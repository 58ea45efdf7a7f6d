import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface TwoFactorStatus {
  totp: 'off' | 'pending' | 'enabled';
  email_codes: boolean;
}

export default class TwoFactorDisable extends TollgateCommand<typeof TwoFactorDisable> {
  static override summary = 'Turn two-factor authentication off.';

  static override description =
    'Needs your password and, when an authenticator app is set up, a current code from it or one of your recovery codes. Without a terminal nothing is asked: pass the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD, and the code with --code.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --password-stdin --code 123456',
  ];

  static override flags = {
    code: Flags.string({
      description: 'A current code from your authenticator app, or a recovery code',
      env: 'TOLLGATE_2FA_CODE',
    }),
    'password-stdin': Flags.boolean({ description: 'Read the password from standard input' }),
  };

  async run(): Promise<void> {
    const { ask, readStdin } = await import('../../prompt.js');
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;

    let password = process.env.TOLLGATE_PASSWORD;
    if (this.flags['password-stdin']) password = await readStdin();
    if (!password && !tty) {
      throw new CliError('usage_error', 'no terminal to ask for the password', {
        hint: 'pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD',
        exitCode: exitCodes.usage,
      });
    }

    const status = (await this.call('GET', '/v1/me/2fa')) as TwoFactorStatus;
    let code = this.flags.code;
    if (status.totp === 'enabled' && code === undefined) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for a code from your authenticator app', {
          hint: 'pass --code (or TOLLGATE_2FA_CODE) with a current code or a recovery code',
          exitCode: exitCodes.usage,
        });
      }
      code = (await ask('Code from your authenticator app (or a recovery code): ')).trim();
    }
    if (!password) password = await ask('Password: ', { hidden: true });

    await this.call('DELETE', '/v1/me/2fa', { password, ...(code === undefined ? {} : { code }) });
    if (this.jsonMode) {
      this.outJson({ two_factor: 'off' });
      return;
    }
    this.out('Two-factor authentication is off: your password alone signs you in.');
  }
}
