import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class TeamsSwitch extends TollgateCommand<typeof TeamsSwitch> {
  static override summary = 'Choose the team that team commands act on by default.';

  static override examples = ['<%= config.bin %> <%= command.id %> acme'];

  static override args = { team: Args.string({ description: 'Team slug or id', required: true }) };

  async run(): Promise<void> {
    // Checked against the API first: switching to a team you cannot see is an error now, not later.
    const team = (await this.call('GET', `/v1/teams/${encodeURIComponent(this.args.team)}`)) as {
      slug: string;
      name: string;
    };
    const { updateProfile } = await import('../../profiles.js');
    const file = await updateProfile(this.flags.profile, { team: team.slug });
    if (this.jsonMode) this.outJson({ team: team.slug, config: file });
    else this.out(`Current team: ${team.name} (${team.slug}).`);
  }
}
