import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';
import { teamFlag } from '../../team-flag.js';

interface Team {
  id: string;
  name: string;
  slug: string;
  owner_user_id: string | null;
  require_two_factor: boolean;
  created_at: string;
}

export default class TeamsShow extends TollgateCommand<typeof TeamsShow> {
  static override summary = 'Show a team: name, slug, id, owner, two-factor rule, creation time.';

  static override description =
    'Any member may look (team:read). The owner is shown by email and user id (by id alone when the members list is closed to you, e.g. in a team that requires two-factor authentication you have not turned on). When stdout is not a terminal each line is the field and its value separated by a tab.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const slug = await this.currentTeam(this.flags.team);
    const team = (await this.call('GET', `/v1/teams/${encodeURIComponent(slug)}`)) as Team;
    if (this.jsonMode) {
      this.outJson(team);
      return;
    }
    const fields: [string, string][] = [
      ['name', team.name],
      ['slug', team.slug],
      ['id', team.id],
      ['owner', await this.describeOwner(team)],
      ['2fa', team.require_two_factor ? 'required of every member' : 'not required'],
      ['created', team.created_at],
    ];
    this.out(renderFields(fields, { tty: process.stdout.isTTY === true }));
  }

  /** `email (id)`; the id alone when the members list cannot be read, which must not fail `show`. */
  private async describeOwner(team: Team): Promise<string> {
    if (!team.owner_user_id) return '';
    try {
      const { members } = (await this.call('GET', `/v1/teams/${encodeURIComponent(team.id)}/members`)) as {
        members: { user_id: string; email: string }[];
      };
      const owner = members.find((member) => member.user_id === team.owner_user_id);
      return owner ? `${owner.email} (${owner.user_id})` : team.owner_user_id;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'forbidden' || code === 'two_factor_required_by_team') return team.owner_user_id;
      throw error;
    }
  }
}
