import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface Verified {
  status: 'email_verified';
  email: string;
}

interface VerificationSent {
  status: 'verification_sent';
  email: string;
}

export default class AccountVerify extends TollgateCommand<typeof AccountVerify> {
  static override summary =
    'Verify your email address with the token from the verification email, or have a new one sent (--resend).';

  static override description =
    'The token (tgv_...) is in the email `tollgate signup` sent; it works once and for 24 hours, and only the newest one works. No need to be logged in for that. A token that is unknown, expired or already used fails with token_invalid: ask for a new email with --resend, which is signed in (POST /v1/auth/verify-email/resend) and makes earlier tokens stop working.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> tgv_...',
    '<%= config.bin %> <%= command.id %> --resend',
  ];

  static override args = { token: Args.string({ description: 'The token from the email' }) };

  static override flags = {
    resend: Flags.boolean({ description: 'Send a new verification email to your address (signed in)' }),
  };

  async run(): Promise<void> {
    const token = this.args.token?.trim();
    if (this.flags.resend) {
      if (token !== undefined) {
        throw new CliError('usage_error', 'give a token or --resend, not both', { exitCode: exitCodes.usage });
      }
      await this.resend();
      return;
    }
    if (!token) {
      throw new CliError('usage_error', 'no token given', {
        hint: 'pass the token from the verification email, or --resend to get a new email',
        exitCode: exitCodes.usage,
      });
    }
    const { expectOk, request } = await import('../../api-client.js');
    const apiUrl = await this.apiUrl();
    const verified = expectOk(await request(apiUrl, 'POST', '/v1/auth/verify-email', { body: { token } })) as Verified;
    if (this.jsonMode) this.outJson(verified);
    else this.out(`Verified ${verified.email}.`);
  }

  private async resend(): Promise<void> {
    const sent = (await this.call('POST', '/v1/auth/verify-email/resend')) as VerificationSent;
    if (this.jsonMode) {
      this.outJson(sent);
      return;
    }
    this.out(`Sent a new verification email to ${sent.email}.`);
    this.note(this.style('dim', 'Then run `tollgate account verify <token>` with the token in it.', 'stderr'));
  }
}
