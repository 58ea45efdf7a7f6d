import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';
import { type SubscriptionDocument, subscriptionFields } from '../../subscription-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class SubscriptionCancel extends TollgateCommand<typeof SubscriptionCancel> {
  static override summary = "Cancel the team's subscription, now or at the end of the period.";

  static override description =
    'Now: the team falls back to the default plan at once. With --at-period-end it stays until the period ends, and `tollgate subscription resume` undoes it until then. Needs billing:write (team admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --at-period-end',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = {
    team: teamFlag,
    'at-period-end': Flags.boolean({ description: 'Cancel when the current period ends instead of now' }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const subscription = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/subscription/cancel`, {
      at_period_end: this.flags['at-period-end'],
    })) as SubscriptionDocument;
    if (this.jsonMode) {
      this.outJson(subscription);
      return;
    }
    this.note(
      subscription.status === 'canceled'
        ? 'Canceled.'
        : `Cancels at ${subscription.current_period_end}; undo with tollgate subscription resume.`,
    );
    this.out(renderFields(subscriptionFields(subscription), { tty: process.stdout.isTTY === true }));
  }
}
