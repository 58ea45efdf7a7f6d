import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

interface ResetRequested {
  status: 'reset_requested';
  email: string;
}

interface ResetDone {
  status: 'password_reset';
  sessions_revoked: number;
}

export default class AccountPassword extends TollgateCommand<typeof AccountPassword> {
  static override summary = 'Reset a forgotten password: get a reset email, then set the new password with its token.';

  static override description =
    `With --email, asks for a reset email (the answer is the same whether or not the address has an account). With --token (the tgp_... token from that email, valid one hour), sets the new password and signs the account out everywhere; log in again afterwards. Without a terminal nothing is asked: pass the new password on standard input (--password-stdin) or in TOLLGATE_PASSWORD. On a terminal the new password is asked twice.`;

  /** The name people look for first; one command, so the two cannot drift apart. */
  static override aliases = ['account:reset-password'];

  static override examples = [
    '<%= config.bin %> <%= command.id %> --email ada@example.com',
    '<%= config.bin %> <%= command.id %> --token tgp_...',
    'printf %s "$NEW_PASSWORD" | <%= config.bin %> <%= command.id %> --token tgp_... --password-stdin',
  ];

  static override flags = {
    email: Flags.string({ description: 'Account email: send it a reset token', env: 'TOLLGATE_EMAIL' }),
    token: Flags.string({
      description: 'The token from the reset email: set the new password',
      env: 'TOLLGATE_RESET_TOKEN',
    }),
    'password-stdin': Flags.boolean({ description: 'Read the new password from standard input' }),
  };

  async run(): Promise<void> {
    const { ask } = await import('../../prompt.js');
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;
    if (this.flags.token) {
      await this.setPassword(this.flags.token.trim());
      return;
    }
    let email = this.flags.email;
    if (!email) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for the email', {
          hint: 'pass --email (or TOLLGATE_EMAIL) to get a reset email, or --token to set the new password',
          exitCode: exitCodes.usage,
        });
      }
      email = (await ask('Email: ')).trim();
    }
    const { expectOk, request } = await import('../../api-client.js');
    const apiUrl = await this.apiUrl();
    const answer = expectOk(
      await request(apiUrl, 'POST', '/v1/auth/password-reset', { body: { email } }),
    ) as ResetRequested;
    if (this.jsonMode) {
      this.outJson({ ...answer, api_url: apiUrl });
      return;
    }
    this.out(`If ${answer.email} has an account, a reset email is on its way.`);
    this.note(
      this.style('dim', 'Then run `tollgate account password --token <token>` with the token in it.', 'stderr'),
    );
  }

  private async setPassword(token: string): Promise<void> {
    const { readPassword } = await import('../../read-password.js');
    const { expectOk, request } = await import('../../api-client.js');
    const password = await readPassword({
      stdin: this.flags['password-stdin'],
      prompt: 'New password (at least 12 characters): ',
      again: 'New password again: ',
      what: 'the new password',
    });
    const apiUrl = await this.apiUrl();
    const done = expectOk(
      await request(apiUrl, 'POST', '/v1/auth/password-reset/confirm', { body: { token, password } }),
    ) as ResetDone;
    if (this.jsonMode) {
      this.outJson(done);
      return;
    }
    this.out(`Password changed; ${done.sessions_revoked} session(s) signed out.`);
    this.note(this.style('dim', 'Log in with the new password: tollgate login', 'stderr'));
  }
}
