import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

export default class TeamsList extends TollgateCommand<typeof TeamsList> {
  static override summary = 'List your teams and your role in each; * marks the current one.';

  static override examples = ['<%= config.bin %> <%= command.id %>'];

  async run(): Promise<void> {
    const { teams } = (await this.call('GET', '/v1/teams')) as {
      teams: { id: string; slug: string; name: string; role: string }[];
    };
    if (this.jsonMode) {
      this.outJson({ teams });
      return;
    }
    const { loadProfile } = await import('../../profiles.js');
    const current = (await loadProfile(this.flags.profile)).team;
    this.out(
      renderTable(
        teams,
        [
          { header: ' ', value: (team) => (team.slug === current || team.id === current ? '*' : '') },
          { header: 'slug', value: (team) => team.slug },
          { header: 'name', value: (team) => team.name },
          { header: 'role', value: (team) => team.role },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
