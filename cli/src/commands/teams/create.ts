import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class TeamsCreate extends TollgateCommand<typeof TeamsCreate> {
  static override summary = 'Create a team; you become its owner and admin, and it becomes your current team.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> "Acme Corp"',
    '<%= config.bin %> <%= command.id %> "Acme Corp" --slug acme',
  ];

  static override args = { name: Args.string({ description: 'Team name', required: true }) };

  static override flags = { slug: Flags.string({ description: 'URL-safe short name [default: from the name]' }) };

  async run(): Promise<void> {
    const team = (await this.call('POST', '/v1/teams', {
      name: this.args.name,
      ...(this.flags.slug ? { slug: this.flags.slug } : {}),
    })) as { id: string; slug: string; name: string };
    const { updateProfile } = await import('../../profiles.js');
    await updateProfile(this.flags.profile, { team: team.slug });
    if (this.jsonMode) this.outJson(team);
    else this.out(`Created team ${team.name} (${team.slug}); it is now your current team.`);
  }
}
