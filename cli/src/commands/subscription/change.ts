import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { renderFields } from '../../output/fields.js';
import {
  type CheckoutDocument,
  money,
  type SubscriptionDocument,
  subscriptionFields,
} from '../../subscription-fields.js';
import { teamFlag } from '../../team-flag.js';

interface ChangeDocument {
  change: 'upgraded' | 'downgrade_scheduled' | 'interval_switched' | 'interval_switch_scheduled';
  proration: { credit_minor: number; charge_minor: number; net_minor: number } | null;
  subscription: SubscriptionDocument;
}

export default class SubscriptionChange extends TollgateCommand<typeof SubscriptionChange> {
  static override summary = "Move the team's subscription to another plan and/or between monthly and annual billing.";

  static override description =
    'A plan that costs as much or more applies at once, and the rest of the period is prorated (the unused part of the old price credited, the new one charged). A plan that costs less applies at the end of the period. --annual switches to annual billing at once: a new yearly period starts now and the unused part of the month is credited against the annual fee. --monthly switches back at the end of the paid year (shown as a pending change). During a trial either switch applies at once, without proration. Give a plan, --annual/--monthly, or both. From a free plan to a paid one through Stripe, prints a Checkout URL to pay at. Needs billing:write (team admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> pro',
    '<%= config.bin %> <%= command.id %> --annual',
    '<%= config.bin %> <%= command.id %> pro --annual',
    '<%= config.bin %> <%= command.id %> --monthly --json',
  ];

  static override args = {
    plan: Args.string({ description: 'Slug of the plan to move to (default: the current plan)', required: false }),
  };

  static override flags = {
    team: teamFlag,
    annual: Flags.boolean({
      description: 'Switch to annual billing (at once)',
      env: 'TOLLGATE_ANNUAL',
      exclusive: ['monthly'],
    }),
    monthly: Flags.boolean({
      description: 'Switch to monthly billing (at the end of the paid year)',
      env: 'TOLLGATE_MONTHLY',
      exclusive: ['annual'],
    }),
  };

  async run(): Promise<void> {
    const interval = this.flags.annual ? 'year' : this.flags.monthly ? 'month' : undefined;
    if (!this.args.plan && !interval) {
      throw new CliError('usage_error', 'give a plan to move to, --annual or --monthly (or a plan and one of them)', {
        hint: 'see tollgate subscription change --help',
        exitCode: exitCodes.usage,
      });
    }
    const team = await this.currentTeam(this.flags.team);
    const answer = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/subscription/change`, {
      ...(this.args.plan ? { plan: this.args.plan } : {}),
      ...(interval ? { interval } : {}),
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
    const pending = subscription.pending_change;
    if ((answer.change === 'downgrade_scheduled' || answer.change === 'interval_switch_scheduled') && pending) {
      const billed = pending.interval === 'year' ? 'annual' : 'monthly';
      this.note(`${pending.plan}, billed ${billed}, starts at the end of the period, ${pending.at}.`);
    } else if (answer.change === 'interval_switched' && proration) {
      this.note(
        `Now billed ${subscription.interval === 'year' ? 'annually' : 'monthly'} from ${subscription.current_period_start}: ${money(proration.credit_minor, subscription.currency)} of the old period credited.`,
      );
    } else if (answer.change === 'interval_switched') {
      this.note(
        `Billed ${subscription.interval === 'year' ? 'annually' : 'monthly'} once the trial ends, ${subscription.current_period_end}.`,
      );
    } else if (proration) {
      this.note(
        `Prorated: ${money(proration.charge_minor, subscription.currency)} charged, ${money(proration.credit_minor, subscription.currency)} credited, ${money(proration.net_minor, subscription.currency)} net.`,
      );
    }
    this.out(renderFields(subscriptionFields(subscription), { tty: process.stdout.isTTY === true }));
  }
}
