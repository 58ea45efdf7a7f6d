import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';
import {
  type CheckoutDocument,
  money,
  type SubscriptionDocument,
  subscriptionFields,
} from '../../subscription-fields.js';
import { teamFlag } from '../../team-flag.js';

interface ChangeDocument {
  change: 'upgraded' | 'downgrade_scheduled';
  proration: { credit_minor: number; charge_minor: number; net_minor: number } | null;
  subscription: SubscriptionDocument;
}

export default class SubscriptionChange extends TollgateCommand<typeof SubscriptionChange> {
  static override summary = "Move the team's subscription to another plan.";

  static override description =
    'A plan that costs as much or more applies at once, and the rest of the period is prorated (the unused part of the old price credited, the new one charged). A plan that costs less applies at the end of the period. From a free plan to a paid one through Stripe, prints a Checkout URL to pay at. Needs billing:write (team admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> pro',
    '<%= config.bin %> <%= command.id %> basic --json',
  ];

  static override args = { plan: Args.string({ description: 'Slug of the plan to move to', required: true }) };

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const answer = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/subscription/change`, {
      plan: this.args.plan,
    })) as ChangeDocument | CheckoutDocument;
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    if ('checkout_url' in answer) {
      this.out(answer.checkout_url);
      this.note('Open this URL to pay; the new plan starts once the payment completes.');
      return;
    }
    const { subscription, proration } = answer;
    if (answer.change === 'downgrade_scheduled' && subscription.pending_change) {
      this.note(
        `${subscription.pending_change.plan} starts at the end of the period, ${subscription.pending_change.at}.`,
      );
    } else if (proration) {
      this.note(
        `Prorated: ${money(proration.charge_minor, subscription.currency)} charged, ${money(proration.credit_minor, subscription.currency)} credited, ${money(proration.net_minor, subscription.currency)} net.`,
      );
    }
    this.out(renderFields(subscriptionFields(subscription), { tty: process.stdout.isTTY === true }));
  }
}
