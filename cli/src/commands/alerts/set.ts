import { Flags } from '@oclif/core';
import { type AlertThresholdsBody, describeAlert } from '../../alert-fields.js';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { teamFlag } from '../../team-flag.js';

export default class AlertsSet extends TollgateCommand<typeof AlertsSet> {
  static override summary = "Set the team's usage alerts: percentages of plan quotas and overage spend amounts.";

  static override description =
    "Replaces every threshold of the team with the ones given. --quota <metric>:<percent> fires when usage in the billing period reaches that whole percentage (1 to 100) of what the plan includes of the metric; --spend <amount> fires when the overage charges of the period so far (base fee excluded) reach that amount in the team's currency. Each threshold fires once per billing period, by email to the team's owner and admins and by webhook (quota.threshold_reached; quota.exhausted too at 100% of a capped quota), up to about a minute after the usage. Needs alerts:write (team admins).";

  static override examples = [
    '<%= config.bin %> <%= command.id %> --quota calls:80 --quota calls:100 --spend 50.00',
    '<%= config.bin %> <%= command.id %> --team acme --quota bandwidth:90 --json',
  ];

  static override flags = {
    team: teamFlag,
    quota: Flags.string({ description: '<metric>:<percent>, e.g. calls:80 (repeatable)', multiple: true }),
    spend: Flags.string({
      description: "An overage amount in the team's currency, e.g. 50.00 (repeatable)",
      multiple: true,
    }),
  };

  async run(): Promise<void> {
    const quota = (this.flags.quota ?? []).map((text) => {
      const match = /^([a-z][a-z0-9_]*):(-?\d+(?:\.\d+)?)$/.exec(text);
      if (!match) {
        throw new CliError('usage_error', `--quota ${JSON.stringify(text)} is not <metric>:<percent>`, {
          hint: 'for example --quota calls:80',
          exitCode: exitCodes.usage,
        });
      }
      return { metric: match[1] as string, percent: Number(match[2]) };
    });
    const spend = (this.flags.spend ?? []).map((amount) => ({ amount }));
    if (quota.length === 0 && spend.length === 0) {
      throw new CliError('usage_error', 'name at least one --quota or --spend', {
        hint: 'to remove every alert, run `tollgate alerts clear`',
        exitCode: exitCodes.usage,
      });
    }
    const team = await this.currentTeam(this.flags.team);
    const set = (await this.call('PUT', `/v1/teams/${encodeURIComponent(team)}/alerts`, {
      quota,
      spend,
    })) as AlertThresholdsBody;
    if (this.jsonMode) {
      this.outJson(set);
      return;
    }
    const names = [
      ...set.quota.map((alert) => describeAlert({ ...alert, kind: 'quota' })),
      ...set.spend.map((alert) => describeAlert({ ...alert, metric: null, percent: null })),
    ];
    this.out(`Alerts set: ${names.join(', ')}.`);
  }
}
