import { Flags } from '@oclif/core';
import type { TokenResponse } from '../api-client.js';
import { TollgateCommand } from '../base-command.js';
import { CliError, exitCodes } from '../cli-error.js';

export default class Login extends TollgateCommand<typeof Login> {
  static override summary = 'Log in to the control plane with email and password.';

  static override description =
    `Stores the session for the profile in credentials.json under the config directory, readable by you alone (mode 0600); \`tollgate auth status\` shows where. Without a terminal nothing is asked: pass --email and the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD. For an account with two-factor authentication, the code is asked for on a terminal, or taken from --code (TOLLGATE_2FA_CODE). For CI, TOLLGATE_TOKEN (an access token) replaces logging in.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --email ada@example.com',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --email ada@example.com --password-stdin',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --email ada@example.com --password-stdin --code 123456',
  ];

  static override flags = {
    email: Flags.string({ description: 'Account email', env: 'TOLLGATE_EMAIL' }),
    'password-stdin': Flags.boolean({ description: 'Read the password from standard input' }),
    code: Flags.string({
      description:
        'Two-factor code, for an account that uses it: 6 digits from the authenticator app, or a recovery code',
      env: 'TOLLGATE_2FA_CODE',
    }),
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
    const answer = expectOk(await request(apiUrl, 'POST', '/v1/auth/login', { body: { email, password } })) as
      | TokenResponse
      | TwoFactorChallenge;
    const tokens = 'two_factor_required' in answer ? await this.secondFactor(apiUrl, answer, tty) : answer;
    const path = await saveCredentials(this.flags.profile, credentialsFrom(apiUrl, tokens));
    if (this.jsonMode) {
      this.outJson({ user: tokens.user, session_id: tokens.session_id, api_url: apiUrl, credentials: path });
      return;
    }
    this.out(`Logged in to ${apiUrl} as ${tokens.user.email}.`);
    this.note(this.style('dim', `Session stored in ${path}`, 'stderr'));
  }

  /** The second step for an account with two-factor authentication: --code, else asked on a terminal. */
  private async secondFactor(apiUrl: string, challenge: TwoFactorChallenge, tty: boolean): Promise<TokenResponse> {
    const { ask } = await import('../prompt.js');
    const { expectOk, request } = await import('../api-client.js');
    const complete = (code: string, method?: 'email') =>
      request(apiUrl, 'POST', '/v1/auth/login/2fa', {
        body: { challenge: challenge.challenge, code, ...(method ? { method } : {}) },
      });
    const appCodes = challenge.methods.includes('totp');
    if (this.flags.code !== undefined && appCodes) {
      return expectOk(await complete(this.flags.code)) as TokenResponse;
    }
    if (!tty) {
      throw new CliError(
        'usage_error',
        appCodes
          ? 'this account uses two-factor authentication, and there is no terminal to ask for the code'
          : 'this account gets its second factor by email, which needs a terminal to type the code in',
        {
          hint: appCodes
            ? 'pass --code (or TOLLGATE_2FA_CODE) with a code from your authenticator app or a recovery code'
            : 'log in on a terminal',
          exitCode: exitCodes.usage,
        },
      );
    }
    const sendEmail = async () => {
      const sent = expectOk(
        await request(apiUrl, 'POST', '/v1/auth/login/2fa/email', { body: { challenge: challenge.challenge } }),
      ) as { sent_to: string };
      this.note(`Sent a code to ${sent.sent_to}.`);
    };
    let method: 'email' | undefined;
    if (!appCodes) {
      await sendEmail();
      method = 'email';
    }
    for (;;) {
      const question =
        method === 'email'
          ? 'Code from the email: '
          : `Code from your authenticator app or a recovery code${challenge.methods.includes('email') ? ' (Enter: get one by email)' : ''}: `;
      const code = (await ask(question)).trim();
      if (code === '') {
        if (method !== 'email' && challenge.methods.includes('email')) {
          await sendEmail();
          method = 'email';
        }
        continue;
      }
      const answer = await complete(code, method);
      const error = (answer.body as TwoFactorError | undefined)?.error;
      // A wrong code is worth another try while the challenge takes more; anything else is final.
      const triesLeft = Number(error?.details?.attempts_left);
      if (error?.code === 'two_factor_invalid' && triesLeft > 0) {
        this.note(`${this.style('red', error.code, 'stderr')}: ${error.message} (${triesLeft} more tries)`);
        continue;
      }
      return expectOk(answer) as TokenResponse;
    }
  }
}

interface TwoFactorChallenge {
  two_factor_required: true;
  challenge: string;
  methods: ('totp' | 'recovery_code' | 'email')[];
}

interface TwoFactorError {
  error?: { code?: string; message?: string; details?: { attempts_left?: unknown } };
}
