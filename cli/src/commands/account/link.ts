import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { loginProviders } from '../../browser-login.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class AccountLink extends TollgateCommand<typeof AccountLink> {
  static override summary = 'Link a GitHub, Google, Apple or team SSO account to yours, in the browser.';

  static override description =
    'Afterwards `tollgate login --provider <provider>` logs in to this account. A team SSO account must be linked this way when your Tollgate account was made before the team set up SSO.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --provider github',
    '<%= config.bin %> <%= command.id %> --provider sso --team acme --no-browser',
  ];

  static override flags = {
    provider: Flags.string({
      description: 'github, google, apple or sso',
      options: [...loginProviders],
      required: true,
    }),
    team: Flags.string({ description: 'With --provider sso: the team (slug)' }),
    browser: Flags.boolean({
      description: 'Open the browser (--no-browser only prints the URL to open)',
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const { browserLogin } = await import('../../browser-login.js');
    const provider = this.flags.provider as (typeof loginProviders)[number];
    if (provider === 'sso' && !this.flags.team) {
      throw new CliError('usage_error', 'single sign-on needs the team', {
        hint: 'pass --team <slug>',
        exitCode: exitCodes.usage,
      });
    }
    if (this.flags.browser && !(process.stdin.isTTY && process.stderr.isTTY)) {
      throw new CliError('usage_error', 'no terminal: a browser cannot be opened from here', {
        hint: 'pass --no-browser to print the URL and wait for it to be opened on this machine',
        exitCode: exitCodes.usage,
      });
    }
    const session = await this.session();
    const answer = (await browserLogin({
      apiUrl: session.apiUrl,
      provider,
      team: this.flags.team,
      linkToken: session.token,
      openBrowser: this.flags.browser,
      note: (message) => this.note(message),
    })) as { linked: { id: string; provider: string; email: string | null } };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    this.out(
      `Linked ${answer.linked.provider}${answer.linked.email ? ` (${answer.linked.email})` : ''}: ${answer.linked.id}`,
    );
  }
}
