import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';
import { teamFlag } from '../../team-flag.js';

/** Finds a member's id from an email or an id, through the members list. */
export async function memberId(
  call: (method: string, path: string) => Promise<unknown>,
  team: string,
  who: string,
): Promise<{ id: string; email: string }> {
  const { members } = (await call('GET', `/v1/teams/${encodeURIComponent(team)}/members`)) as {
    members: { user_id: string; email: string }[];
  };
  const member = members.find((m) => m.user_id === who || m.email.toLowerCase() === who.toLowerCase());
  if (!member)
    throw new CliError('not_found', `${who} is not a member of ${team}`, { hint: 'see tollgate teams members' });
  return { id: member.user_id, email: member.email };
}

export default class TeamsRemove extends TollgateCommand<typeof TeamsRemove> {
  static override summary = 'Remove a member (needs members:manage); your own email leaves the team.';

  static override examples = ['<%= config.bin %> <%= command.id %> grace@example.com'];

  static override args = { member: Args.string({ description: 'Email or user id', required: true }) };

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const member = await memberId((method, path) => this.call(method, path), team, this.args.member);
    await this.call('DELETE', `/v1/teams/${encodeURIComponent(team)}/members/${member.id}`);
    if (this.jsonMode) this.outJson({ removed: member });
    else this.out(`Removed ${member.email} from ${team}.`);
  }
}
