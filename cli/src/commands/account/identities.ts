import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

interface IdentityRow {
  id: string;
  provider: string;
  team_id: string | null;
  email: string | null;
  created_at: string;
  last_login_at: string | null;
}

export default class AccountIdentities extends TollgateCommand<typeof AccountIdentities> {
  static override summary = 'List the GitHub, Google, Apple and SSO accounts linked to yours.';

  static override description =
    'Each linked identity is a way to log in (`tollgate login --provider ...`). Link another with `tollgate account link`, remove one with `tollgate account unlink <id>`.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const answer = (await this.call('GET', '/v1/me/identities')) as {
      has_password: boolean;
      identities: IdentityRow[];
    };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    if (answer.identities.length === 0) {
      this.out('No provider accounts linked. Link one with `tollgate account link --provider github`.');
      return;
    }
    this.out(
      renderTable(
        answer.identities,
        [
          { header: 'id', value: (row) => row.id },
          { header: 'provider', value: (row) => row.provider },
          { header: 'email', value: (row) => row.email ?? '' },
          { header: 'linked', value: (row) => row.created_at },
          { header: 'last login', value: (row) => row.last_login_at ?? '' },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
    if (!answer.has_password) this.note(this.style('dim', 'This account has no password.', 'stderr'));
  }
}
