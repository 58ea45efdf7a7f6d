import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { teamFlag } from '../../team-flag.js';
import { memberId } from './remove.js';

export default class TeamsRole extends TollgateCommand<typeof TeamsRole> {
  static override summary = "Change a member's role, or grant and revoke single permissions (needs members:manage).";

  static override description =
    "Grants and revocations replace the member's current lists; docs/permissions.md lists the permissions.";

  static override examples = [
    '<%= config.bin %> <%= command.id %> grace@example.com developer',
    '<%= config.bin %> <%= command.id %> ada@example.com --grant billing:read',
    '<%= config.bin %> <%= command.id %> ada@example.com --revoke keys:write',
  ];

  static override args = {
    member: Args.string({ description: 'Email or user id', required: true }),
    role: Args.string({ description: 'New role', options: ['admin', 'developer', 'user'] }),
  };

  static override flags = {
    team: teamFlag,
    grant: Flags.string({ description: 'Permission to add on top of the role (repeatable)', multiple: true }),
    revoke: Flags.string({ description: 'Permission to take away from the role (repeatable)', multiple: true }),
  };

  async run(): Promise<void> {
    if (!this.args.role && !this.flags.grant && !this.flags.revoke) {
      throw new CliError('usage_error', 'give a role, --grant or --revoke', { exitCode: exitCodes.usage });
    }
    const team = await this.currentTeam(this.flags.team);
    const member = await memberId((method, path) => this.call(method, path), team, this.args.member);
    const change = {
      ...(this.args.role ? { role: this.args.role } : {}),
      ...(this.flags.grant ? { grants: this.flags.grant } : {}),
      ...(this.flags.revoke ? { revocations: this.flags.revoke } : {}),
    };
    await this.call('PATCH', `/v1/teams/${encodeURIComponent(team)}/members/${member.id}`, change);
    if (this.jsonMode) this.outJson({ member, ...change });
    else this.out(`Updated ${member.email} in ${team}.`);
  }
}
