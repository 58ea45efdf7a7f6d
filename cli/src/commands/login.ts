import { Flags } from '@oclif/core';
import { TollgateCommand } from '../base-command.js';
import { CliError, exitCodes } from '../cli-error.js';

export default class Login extends TollgateCommand<typeof Login> {
  static override summary = 'Log in to the control plane with email and password.';

  static override description =
    `Stores the session for the profile in credentials.json under the config directory, readable by you alone (mode 0600); \`tollgate auth status\` shows where. Without a terminal nothing is asked: pass --email and the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD. For CI, TOLLGATE_TOKEN (an access token) replaces logging in.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --email ada@example.com',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --email ada@example.com --password-stdin',
  ];

  static override flags = {
    email: Flags.string({ description: 'Account email', env: 'TOLLGATE_EMAIL' }),
    'password-stdin': Flags.boolean({ description: 'Read the password from standard input' }),
  };

  async run(): Promise<void> {
    const { ask, readStdin } = await import('../prompt.js');
    const { credentialsFrom, expectOk, request } = await import('../api-client.js');
    const { saveCredentials } = await import('../credentials.js');
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;

    let email = this.flags.email;
    if (!email) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for the email', {
          hint: 'pass --email (or TOLLGATE_EMAIL)',
          exitCode: exitCodes.usage,
        });
      }
      email = (await ask('Email: ')).trim();
    }
    let password = process.env.TOLLGATE_PASSWORD;
    if (this.flags['password-stdin']) password = await readStdin();
    if (!password) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for the password', {
          hint: 'pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD',
          exitCode: exitCodes.usage,
        });
      }
      password = await ask('Password: ', { hidden: true });
    }

    const apiUrl = await this.apiUrl();
    const tokens = expectOk(
      await request(apiUrl, 'POST', '/v1/auth/login', { body: { email, password } }),
    ) as Parameters<typeof credentialsFrom>[1];
    const path = await saveCredentials(this.flags.profile, credentialsFrom(apiUrl, tokens));
    if (this.jsonMode) {
      this.outJson({ user: tokens.user, session_id: tokens.session_id, api_url: apiUrl, credentials: path });
      return;
    }
    this.out(`Logged in to ${apiUrl} as ${tokens.user.email}.`);
    this.note(this.style('dim', `Session stored in ${path}`, 'stderr'));
  }
}
