import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';

export default class AuthStatus extends TollgateCommand<typeof AuthStatus> {
  static override summary = 'Say whether this CLI is logged in, as whom, and where the credentials are stored.';

  static override description =
    'Exits 0 when logged in, 4 when not. With TOLLGATE_TOKEN set, says which kind of token it holds (a personal access token, tgpat_..., or an access token), going by its form: the token is not checked with the API (`tollgate whoami` does).';

  static override examples = ['<%= config.bin %> <%= command.id %>'];

  async run(): Promise<void> {
    const { credentialsPath, loadCredentials } = await import('../../credentials.js');
    const path = credentialsPath();
    const envToken = process.env.TOLLGATE_TOKEN;
    if (envToken) {
      const { tokenKind } = await import('../../api-client.js');
      const kind = tokenKind(envToken);
      if (this.jsonMode) {
        this.outJson({ logged_in: true, source: 'TOLLGATE_TOKEN', token_type: kind });
      } else if (kind === 'personal_access_token') {
        this.out(`Using the personal access token in TOLLGATE_TOKEN (${envToken.slice(0, 12)}...).`);
      } else if (kind === 'access_token') {
        this.out('Using the access token in TOLLGATE_TOKEN (it lasts 15 minutes and is not refreshed).');
      } else {
        this.out(
          'Using the token in TOLLGATE_TOKEN (neither a personal access token nor an access token by its form).',
        );
      }
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
