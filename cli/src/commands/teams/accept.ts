import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class TeamsAccept extends TollgateCommand<typeof TeamsAccept> {
  static override summary = 'Join a team with the token from your invitation email.';

  static override examples = ['<%= config.bin %> <%= command.id %> tgi_...'];

  static override args = { token: Args.string({ description: 'The invitation token', required: true }) };

  async run(): Promise<void> {
    const joined = (await this.call('POST', '/v1/invitations/accept', { token: this.args.token })) as {
      team: { slug: string; name: string };
      role: string;
    };
    if (this.jsonMode) this.outJson(joined);
    else this.out(`Joined ${joined.team.name} (${joined.team.slug}) as ${joined.role}.`);
  }
}
