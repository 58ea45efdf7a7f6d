import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';
import { confirmAction, requireConfirmationMeans } from '../../confirm-action.js';
import { teamFlag } from '../../team-flag.js';
import { memberId } from './remove.js';

export default class TeamsTransfer extends TollgateCommand<typeof TeamsTransfer> {
  static override summary = 'Make another member the owner of the team (the owner only).';

  static override description =
    'The new owner, named by email or user id, must already be a member; they become an admin if they were not one. You stay a member with your role, but only the new owner can transfer the team again. Asks for confirmation on a terminal; without a terminal, pass --yes.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> grace@example.com',
    '<%= config.bin %> <%= command.id %> grace@example.com --team acme --yes',
  ];

  static override args = { member: Args.string({ description: 'Email or user id of the new owner', required: true }) };

  static override flags = {
    team: teamFlag,
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
  };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'the transfer' });
    const team = await this.currentTeam(this.flags.team);
    const member = await memberId((method, path) => this.call(method, path), team, this.args.member);
    await confirmAction({
      yes: this.flags.yes,
      question: `Make ${member.email} the owner of ${team}? Only they can transfer it again.`,
    });
    try {
      await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/transfer`, { user_id: member.id });
    } catch (error) {
      if (error instanceof CliError && error.code === 'forbidden') {
        throw new CliError(error.code, error.message, { hint: 'only the owner can transfer the team' });
      }
      throw error;
    }
    if (this.jsonMode) this.outJson({ team, owner: member });
    else this.out(`${member.email} is now the owner of ${team}.`);
  }
}
