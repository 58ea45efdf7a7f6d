import { TollgateCommand } from '../../base-command.js';
import { teamFlag } from '../../team-flag.js';

export default class AlertsClear extends TollgateCommand<typeof AlertsClear> {
  static override summary = 'Remove every usage alert threshold of the team (the history stays).';

  static override description = 'Needs alerts:write (team admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const cleared = (await this.call('DELETE', `/v1/teams/${encodeURIComponent(team)}/alerts`)) as { removed: number };
    if (this.jsonMode) this.outJson(cleared);
    else this.out(`Removed ${cleared.removed} alert${cleared.removed === 1 ? '' : 's'}.`);
  }
}
