import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';

export default class TeamsSsoRemove extends TollgateCommand<typeof TeamsSsoRemove> {
  static override summary = "Remove the team's single sign-on (needs team:manage).";

  static override examples = ['<%= config.bin %> <%= command.id %> --team acme'];

  static override flags = {
    team: Flags.string({ description: 'Team slug or id (default: the current team)' }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    await this.call('DELETE', `/v1/teams/${encodeURIComponent(team)}/sso`);
    if (this.jsonMode) this.outJson({ removed: true, team });
    else this.out(`Single sign-on removed from ${team}.`);
  }
}
