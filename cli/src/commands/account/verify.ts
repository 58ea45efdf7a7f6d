import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

interface Verified {
  status: 'email_verified';
  email: string;
}

export default class AccountVerify extends TollgateCommand<typeof AccountVerify> {
  static override summary = 'Verify your email address with the token from the verification email.';

  static override description =
    'The token (tgv_...) is in the email `tollgate signup` sent; it works once and for 24 hours. No need to be logged in. A token that is unknown, expired or already used fails with token_invalid: ask for a new email by logging in and resending it (POST /v1/auth/verify-email/resend).';

  static override examples = ['<%= config.bin %> <%= command.id %> tgv_...'];

  static override args = { token: Args.string({ description: 'The token from the email', required: true }) };

  async run(): Promise<void> {
    const { expectOk, request } = await import('../../api-client.js');
    const apiUrl = await this.apiUrl();
    const verified = expectOk(
      await request(apiUrl, 'POST', '/v1/auth/verify-email', { body: { token: this.args.token.trim() } }),
    ) as Verified;
    if (this.jsonMode) this.outJson(verified);
    else this.out(`Verified ${verified.email}.`);
  }
}
