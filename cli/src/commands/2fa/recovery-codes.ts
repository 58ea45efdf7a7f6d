import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class TwoFactorRecoveryCodes extends TollgateCommand<typeof TwoFactorRecoveryCodes> {
  static override summary = 'Replace your recovery codes with new ones.';

  static override description =
    'Needs a current code from your authenticator app (not a recovery code). The unused codes stop working; the new ones are printed this once.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --code 123456 --json',
  ];

  static override flags = {
    code: Flags.string({ description: 'A current code from your authenticator app', env: 'TOLLGATE_2FA_CODE' }),
  };

  async run(): Promise<void> {
    let code = this.flags.code;
    if (code === undefined) {
      if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
        throw new CliError('usage_error', 'no terminal to ask for the code from your authenticator app', {
          hint: 'pass --code (or TOLLGATE_2FA_CODE)',
          exitCode: exitCodes.usage,
        });
      }
      const { ask } = await import('../../prompt.js');
      code = (await ask('Code from your authenticator app: ')).trim();
    }
    const { recovery_codes } = (await this.call('POST', '/v1/me/2fa/recovery-codes', { code })) as {
      recovery_codes: string[];
    };
    if (this.jsonMode) {
      this.outJson({ recovery_codes });
      return;
    }
    this.note('New recovery codes (the old ones no longer work), each good for one login without the app:');
    this.out(recovery_codes.join('\n'));
    this.note(this.style('yellow', 'Store them somewhere safe now: they are not shown again.', 'stderr'));
  }
}
