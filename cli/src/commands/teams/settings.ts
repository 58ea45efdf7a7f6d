import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { teamFlag } from '../../team-flag.js';

export default class TeamsSettings extends TollgateCommand<typeof TeamsSettings> {
  static override summary = "Change the team's settings (needs team:manage).";

  static override description =
    'With --require-2fa, members without two-factor authentication can only see the team and leave it until they turn it on. You need two-factor authentication yourself to turn this on.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --require-2fa',
    '<%= config.bin %> <%= command.id %> --no-require-2fa',
  ];

  static override flags = {
    team: teamFlag,
    'require-2fa': Flags.boolean({ description: 'Require two-factor authentication of every member', allowNo: true }),
  };

  async run(): Promise<void> {
    if (this.flags['require-2fa'] === undefined) {
      throw new CliError('usage_error', 'nothing to change', {
        hint: 'pass --require-2fa or --no-require-2fa',
        exitCode: exitCodes.usage,
      });
    }
    const team = await this.currentTeam(this.flags.team);
    const updated = (await this.call('PATCH', `/v1/teams/${encodeURIComponent(team)}`, {
      require_two_factor: this.flags['require-2fa'],
    })) as { slug: string; require_two_factor: boolean };
    if (this.jsonMode) this.outJson(updated);
    else
      this.out(
        `${updated.slug}: two-factor authentication ${updated.require_two_factor ? 'required' : 'not required'}.`,
      );
  }
}
