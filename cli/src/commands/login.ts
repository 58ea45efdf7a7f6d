import { Flags } from '@oclif/core';
import type { TokenResponse } from '../api-client.js';
import { TollgateCommand } from '../base-command.js';
import { loginProviders } from '../browser-login.js';
import { CliError, exitCodes } from '../cli-error.js';

export default class Login extends TollgateCommand<typeof Login> {
  static override summary =
    'Log in to the control plane: email and password, or GitHub, Google, Apple or SSO in the browser.';

  static override description =
    `Stores the session for the profile in credentials.json under the config directory, readable by you alone (mode 0600); \`tollgate auth status\` shows where. Without a terminal nothing is asked: pass --email and the password on standard input (--password-stdin) or in TOLLGATE_PASSWORD. For an account with two-factor authentication, the code is asked for on a terminal, or taken from --code (TOLLGATE_2FA_CODE); codes sent by text message or email are sent and asked for on a terminal (press Enter at the prompt to get one the other way). With --provider, the login happens in the browser: the CLI prints the provider's URL (and opens it unless --no-browser), waits on a loopback port of this machine for the browser to come back, and exchanges the one-time code with a PKCE verifier only it knows. For CI, TOLLGATE_TOKEN (a personal access token from tollgate tokens create, or an access token) replaces logging in.`;

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --email ada@example.com',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --email ada@example.com --password-stdin',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --email ada@example.com --password-stdin --code 123456',
    '<%= config.bin %> <%= command.id %> --provider github',
    '<%= config.bin %> <%= command.id %> --provider sso --team acme --no-browser',
  ];

  static override flags = {
    provider: Flags.string({
      description:
        "Log in through a provider in the browser instead of a password: github, google, apple, or sso (a team's own; name it with --team)",
      options: [...loginProviders],
    }),
    team: Flags.string({ description: 'With --provider sso: the team (slug) whose single sign-on to use' }),
    browser: Flags.boolean({
      description: 'With --provider: open the browser (--no-browser only prints the URL to open)',
      default: true,
      allowNo: true,
    }),
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
    const { expectOk, request } = await import('../api-client.js');
    const tty = process.stdin.isTTY === true && process.stderr.isTTY === true;

    if (this.flags.provider) {
      await this.providerLogin(this.flags.provider as (typeof loginProviders)[number], tty);
      return;
    }
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
    await this.finish(apiUrl, tokens);
  }

  /** GitHub, Google, Apple or a team's SSO in the browser, back to a loopback port of this process. */
  private async providerLogin(provider: (typeof loginProviders)[number], tty: boolean): Promise<void> {
    const { browserLogin } = await import('../browser-login.js');
    if (provider === 'sso' && !this.flags.team && !this.flags.email) {
      throw new CliError('usage_error', 'single sign-on needs the team', {
        hint: "pass --team <slug> (or --email with an address of the team's domain)",
        exitCode: exitCodes.usage,
      });
    }
    if (!tty && this.flags.browser) {
      throw new CliError('usage_error', 'no terminal: a browser login cannot be opened from here', {
        hint: 'pass --no-browser to print the URL and wait for it to be opened on this machine, or use TOLLGATE_TOKEN',
        exitCode: exitCodes.usage,
      });
    }
    const apiUrl = await this.apiUrl();
    const answer = (await browserLogin({
      apiUrl,
      provider,
      team: this.flags.team,
      email: provider === 'sso' ? this.flags.email : undefined,
      openBrowser: this.flags.browser,
      note: (message) => this.note(message),
    })) as TokenResponse | TwoFactorChallenge;
    const tokens = 'two_factor_required' in answer ? await this.secondFactor(apiUrl, answer, tty) : answer;
    await this.finish(apiUrl, tokens);
  }

  private async finish(apiUrl: string, tokens: TokenResponse): Promise<void> {
    const { credentialsFrom } = await import('../api-client.js');
    const { saveCredentials } = await import('../credentials.js');
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
    const complete = (code: string, method?: SentCodeMethod) =>
      request(apiUrl, 'POST', '/v1/auth/login/2fa', {
        body: { challenge: challenge.challenge, code, ...(method ? { method } : {}) },
      });
    const appCodes = challenge.methods.includes('totp');
    if (this.flags.code !== undefined && appCodes) {
      return expectOk(await complete(this.flags.code)) as TokenResponse;
    }
    // Codes Tollgate sends: a text message first (it reaches a phone), then email.
    const sendable = (['sms', 'email'] as const).filter((method) => challenge.methods.includes(method));
    if (!tty) {
      throw new CliError(
        'usage_error',
        appCodes
          ? 'this account uses two-factor authentication, and there is no terminal to ask for the code'
          : `this account gets its second factor by ${sendable.map((method) => sentCodeLabels[method]).join(' or ')}, which needs a terminal to type the code in`,
        {
          hint: appCodes
            ? 'pass --code (or TOLLGATE_2FA_CODE) with a code from your authenticator app or a recovery code'
            : 'log in on a terminal',
          exitCode: exitCodes.usage,
        },
      );
    }
    const sendCode = async (method: SentCodeMethod) => {
      const sent = expectOk(
        await request(apiUrl, 'POST', `/v1/auth/login/2fa/${method}`, { body: { challenge: challenge.challenge } }),
      ) as { sent_to: string };
      this.note(`Sent a code to ${sent.sent_to}.`);
    };
    let method: SentCodeMethod | undefined;
    if (!appCodes && sendable[0]) {
      method = sendable[0];
      await sendCode(method);
    }
    for (;;) {
      // Enter asks for a code the other way: the first sent method, or the one not used yet.
      const other = sendable.find((candidate) => candidate !== method);
      const offer = other ? ` (Enter: get one by ${sentCodeLabels[other]})` : '';
      const question = method
        ? `Code from the ${sentCodeLabels[method]}${offer}: `
        : `Code from your authenticator app or a recovery code${offer}: `;
      const code = (await ask(question)).trim();
      if (code === '') {
        if (other) {
          await sendCode(other);
          method = other;
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
  methods: ('totp' | 'recovery_code' | 'email' | 'sms')[];
}

/** Second factors whose codes Tollgate sends, and how a prompt names them. */
type SentCodeMethod = 'sms' | 'email';
const sentCodeLabels: Record<SentCodeMethod, string> = { sms: 'text message', email: 'email' };

interface TwoFactorError {
  error?: { code?: string; message?: string; details?: { attempts_left?: unknown } };
}
