import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class AuthStatus extends TollgateCommand<typeof AuthStatus> {
  static override summary = 'Say whether this CLI is logged in, as whom, and where the credentials are stored.';

  static override description = 'Exits 0 when logged in, 4 when not.';

  static override examples = ['<%= config.bin %> <%= command.id %>'];

  async run(): Promise<void> {
    const { credentialsPath, loadCredentials } = await import('../../credentials.js');
    const path = credentialsPath();
    if (process.env.TOLLGATE_TOKEN) {
      if (this.jsonMode) this.outJson({ logged_in: true, source: 'TOLLGATE_TOKEN' });
      else this.out('Using the access token in TOLLGATE_TOKEN.');
      return;
    }
    const stored = await loadCredentials(this.flags.profile);
    if (!stored) {
      throw new CliError('not_logged_in', `not logged in (profile ${this.flags.profile}; credentials file ${path})`, {
        hint: 'run `tollgate login`',
        exitCode: exitCodes.notLoggedIn,
      });
    }
    if (this.jsonMode) {
      this.outJson({
        logged_in: true,
        profile: this.flags.profile,
        user: stored.user,
        api_url: stored.api_url,
        session_id: stored.session_id,
        credentials: path,
      });
      return;
    }
    this.out(`Logged in to ${stored.api_url} as ${stored.user.email} (profile ${this.flags.profile}).`);
    this.out(`Credentials: ${path}`);
  }
}
