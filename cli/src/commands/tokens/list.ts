import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

interface TokenRow {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  expired: boolean;
  last_used_at: string | null;
  last_used_ip: string | null;
  current: boolean;
}

export default class TokensList extends TollgateCommand<typeof TokensList> {
  static override summary = 'List your personal access tokens (never their secrets).';

  static override description =
    'Every token not revoked, newest first, expired ones included: its id, name, prefix (tgpat_ and the first characters of the secret, to recognise it), when it expires and when it was last used (recorded to the minute) and from where.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const { tokens } = (await this.call('GET', '/v1/me/tokens')) as { tokens: TokenRow[] };
    if (this.jsonMode) {
      this.outJson({ tokens });
      return;
    }
    if (tokens.length === 0) {
      this.note('No personal access tokens; create one with `tollgate tokens create --name <name>`.');
      return;
    }
    this.out(
      renderTable(
        tokens,
        [
          { header: 'id', value: (row) => row.id },
          { header: 'name', value: (row) => row.name },
          { header: 'prefix', value: (row) => row.prefix },
          { header: 'created', value: (row) => row.created_at },
          {
            header: 'expires',
            value: (row) => (row.expired ? `expired ${row.expires_at}` : (row.expires_at ?? 'never')),
          },
          {
            header: 'last used',
            value: (row) =>
              row.last_used_at ? `${row.last_used_at}${row.last_used_ip ? ` from ${row.last_used_ip}` : ''}` : 'never',
          },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
