import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface TwoFactorStatus {
  totp: 'off' | 'pending' | 'enabled';
  email_codes: boolean;
  sms: 'off' | 'pending' | 'enabled';
  sms_phone: string | null;
}

export default class TwoFactorDisable extends TollgateCommand<typeof TwoFactorDisable> {
  static override summary = 'Turn two-factor authentication off, or only SMS codes.';

  static override description =
    'Needs your password and, when an authenticator app is set up, a current code from it or one of your recovery codes. Without a terminal nothing is asked: pass the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD, and the code with --code.\n\nWith --method sms, only SMS codes go (and the phone number is forgotten); the other second factors stay. That needs the password alone, and nothing for a number that was never confirmed.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --password-stdin --code 123456',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --method sms --password-stdin',
  ];

  static override flags = {
    method: Flags.string({
      description: 'Turn off only this second factor: sms (the others stay on)',
      options: ['sms'],
      env: 'TOLLGATE_2FA_METHOD',
    }),
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
    // For SMS codes alone, whether a password is needed depends on the status (disableSms).
    if (!password && !tty && this.flags.method !== 'sms') {
      throw new CliError('usage_error', 'no terminal to ask for the password', {
        hint: 'pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD',
        exitCode: exitCodes.usage,
      });
    }

    const status = (await this.call('GET', '/v1/me/2fa')) as TwoFactorStatus;
    if (this.flags.method === 'sms') {
      await this.disableSms(status, password, tty);
      return;
    }
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

  /** DELETE /v1/me/2fa/sms: the password when SMS codes are on; a pending number goes without it. */
  private async disableSms(status: TwoFactorStatus, given: string | undefined, tty: boolean): Promise<void> {
    let password = given;
    if (status.sms === 'enabled' && !password) {
      const { ask } = await import('../../prompt.js');
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for the password', {
          hint: 'pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD',
          exitCode: exitCodes.usage,
        });
      }
      password = await ask('Password: ', { hidden: true });
    }
    const after = (await this.call('DELETE', '/v1/me/2fa/sms', password ? { password } : {})) as TwoFactorStatus & {
      methods: string[];
    };
    if (this.jsonMode) {
      this.outJson({ sms: after.sms, methods: after.methods });
      return;
    }
    this.out(
      after.methods.length > 0
        ? 'SMS codes are off and the phone number is forgotten; your other second factors stay on.'
        : 'SMS codes are off and the phone number is forgotten: your password alone signs you in.',
    );
  }
}
