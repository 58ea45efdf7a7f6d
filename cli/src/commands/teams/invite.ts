import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { teamFlag } from '../../team-flag.js';

export default class TeamsInvite extends TollgateCommand<typeof TeamsInvite> {
  static override summary = 'Invite someone to the team by email (needs members:invite).';

  static override description =
    'They receive a single-use link valid for 7 days, and join with `tollgate teams accept <token>`.';

  static override examples = ['<%= config.bin %> <%= command.id %> grace@example.com --role developer'];

  static override args = { email: Args.string({ description: 'Address to invite', required: true }) };

  static override flags = {
    team: teamFlag,
    role: Flags.string({ description: 'Role in the team', options: ['admin', 'developer', 'user'], default: 'user' }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const invitation = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/invitations`, {
      email: this.args.email,
      role: this.flags.role,
    })) as { email: string; role: string; expires_at: string };
    if (this.jsonMode) this.outJson(invitation);
    else
      this.out(`Invited ${invitation.email} as ${invitation.role}; the invitation expires ${invitation.expires_at}.`);
  }
}
