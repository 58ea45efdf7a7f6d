import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

interface Member {
  user_id: string;
  email: string;
  role: string;
  owner: boolean;
  grants: string[];
  revocations: string[];
}

export default class TeamsMembers extends TollgateCommand<typeof TeamsMembers> {
  static override summary = "List the team's members, roles and per-member permission changes.";

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const { members } = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/members`)) as {
      members: Member[];
    };
    if (this.jsonMode) {
      this.outJson({ members });
      return;
    }
    this.out(
      renderTable(
        members,
        [
          { header: 'email', value: (m) => m.email },
          { header: 'role', value: (m) => `${m.role}${m.owner ? ' (owner)' : ''}` },
          { header: 'grants', value: (m) => m.grants.join(',') },
          { header: 'revocations', value: (m) => m.revocations.join(',') },
          { header: 'user_id', value: (m) => m.user_id },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
