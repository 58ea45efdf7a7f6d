import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

interface SessionRow {
  id: string;
  current: boolean;
  created_at: string;
  last_refreshed_at: string | null;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
}

export default class SessionsList extends TollgateCommand<typeof SessionsList> {
  static override summary = "List your account's live sessions.";

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const { sessions } = (await this.call('GET', '/v1/sessions')) as { sessions: SessionRow[] };
    if (this.jsonMode) {
      this.outJson({ sessions });
      return;
    }
    this.out(
      renderTable(
        sessions,
        [
          { header: 'id', value: (row) => row.id },
          { header: 'current', value: (row) => (row.current ? 'yes' : '') },
          { header: 'created', value: (row) => row.created_at },
          { header: 'ip', value: (row) => row.ip ?? '' },
          { header: 'client', value: (row) => row.user_agent ?? '' },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
