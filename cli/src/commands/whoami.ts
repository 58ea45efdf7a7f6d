import { TollgateCommand } from '../base-command.js';

interface Me {
  id: string;
  email: string;
  name: string | null;
  installation_role: string;
  email_verified: boolean;
  /** How this request was signed in: a session, or a personal access token (TOLLGATE_TOKEN). */
  authenticated_via: 'session' | 'token';
  session_id: string | null;
  token_id: string | null;
}

export default class Whoami extends TollgateCommand<typeof Whoami> {
  static override summary = 'Show the account this CLI is signed in as.';

  static override description = 'Exits 4 when not logged in.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const me = (await this.call('GET', '/v1/me')) as Me;
    if (this.jsonMode) {
      this.outJson(me);
      return;
    }
    const role = me.installation_role === 'admin' ? ' (operator)' : '';
    this.out(`${me.email}${role}`);
  }
}
