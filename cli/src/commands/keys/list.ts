import { TollgateCommand } from '../../base-command.js';
import { type ApiKeyBody, keyState } from '../../key-fields.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

export default class KeysList extends TollgateCommand<typeof KeysList> {
  static override summary = "List the team's API keys (never their secrets).";

  static override description =
    'Every key, newest first, revoked and expired ones included: its id, prefix (tg_live_<id>, the part that is not secret), name, state, the APIs it is limited to, when it expires and when a gateway last saw it (recorded at most once a minute). Needs keys:read (every member).';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const { keys } = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/keys`)) as { keys: ApiKeyBody[] };
    if (this.jsonMode) {
      this.outJson({ keys });
      return;
    }
    if (keys.length === 0) {
      this.note('No API keys yet; create one with `tollgate keys create --name <name>`.');
      return;
    }
    this.out(
      renderTable(
        keys,
        [
          { header: 'id', value: (key) => key.id },
          { header: 'prefix', value: (key) => key.prefix },
          { header: 'name', value: (key) => key.name ?? '' },
          { header: 'state', value: (key) => keyState(key) },
          { header: 'apis', value: (key) => (key.apis.length > 0 ? key.apis.map((api) => api.slug).join(',') : 'all') },
          { header: 'expires', value: (key) => key.expires_at ?? 'never' },
          { header: 'last used', value: (key) => key.last_used_at ?? 'never' },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
