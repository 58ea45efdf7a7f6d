import { Flags } from '@oclif/core';
import { TollgateCommand } from '../base-command.js';
import { CliError, exitCodes } from '../cli-error.js';

interface SignupAnswer {
  status: 'verification_sent';
  email: string;
}

export default class Signup extends TollgateCommand<typeof Signup> {
  static override summary = 'Create an account on the control plane with email and password.';

  static override description =
    `Sends a verification email to the address: open its link, or run \`tollgate account verify <token>\` with the token it holds, then \`tollgate login\`. The answer is the same whether or not the address already has an account (its owner is told by email instead), so it never says which emails are registered. Without a terminal nothing is asked: pass --email and the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD. On a terminal the password is asked twice.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --email ada@example.com --name "Ada Lovelace"',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --email ada@example.com --password-stdin',
  ];

  static override flags = {
    email: Flags.string({ description: 'Account email', env: 'TOLLGATE_EMAIL' }),
    name: Flags.string({ description: 'Your name (optional)', env: 'TOLLGATE_NAME' }),
    'password-stdin': Flags.boolean({ description: 'Read the password from standard input' }),
  };

  async run(): Promise<void> {
    const { ask, readStdin } = await import('../prompt.js');
    const { expectOk, request } = await import('../api-client.js');
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
    let name = this.flags.name?.trim();
    if (name === undefined && tty) name = (await ask('Name (optional, Enter to skip): ')).trim();
    let password = process.env.TOLLGATE_PASSWORD;
    if (this.flags['password-stdin']) password = await readStdin();
    if (!password) {
      if (!tty) {
        throw new CliError('usage_error', 'no terminal to ask for the password', {
          hint: 'pass --password-stdin and pipe it in, or set TOLLGATE_PASSWORD',
          exitCode: exitCodes.usage,
        });
      }
      password = await ask('Password (at least 12 characters): ', { hidden: true });
      // Typed blind, so typed twice: a typo here would lock the new account at once.
      if ((await ask('Password again: ', { hidden: true })) !== password) {
        throw new CliError('passwords_differ', 'the two passwords differ', { hint: 'run the command again' });
      }
    }

    const apiUrl = await this.apiUrl();
    const answer = expectOk(
      await request(apiUrl, 'POST', '/v1/auth/signup', {
        body: { email, password, ...(name ? { name } : {}) },
      }),
    ) as SignupAnswer;
    if (this.jsonMode) {
      this.outJson({ ...answer, api_url: apiUrl });
      return;
    }
    this.out(`Sent a verification email to ${answer.email}.`);
    this.note(
      this.style(
        'dim',
        'Open the link in it, or run `tollgate account verify <token>` with its token; then `tollgate login`.',
        'stderr',
      ),
    );
  }
}
