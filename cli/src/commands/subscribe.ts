import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../base-command.js';
import { openInBrowser } from '../browser-login.js';
import { renderFields } from '../output/fields.js';
import { type CheckoutDocument, type SubscriptionDocument, subscriptionFields } from '../subscription-fields.js';
import { teamFlag } from '../team-flag.js';

export default class Subscribe extends TollgateCommand<typeof Subscribe> {
  static override summary = 'Subscribe the team to a plan.';

  static override description =
    "A free plan, or a plan's trial (once per team), starts at once without a card. A paid plan through Stripe prints the Checkout URL on standard output and, on a terminal, opens it in the browser (--no-browser only prints it); the subscription starts when the payment completes. While a Checkout for the same plan, currency and interval is still open, subscribing again prints that one instead of starting a second; a Checkout for another plan replaces (expires) the open one. The team's first subscription fixes its currency. Needs billing:write (team admins).";

  static override examples = [
    '<%= config.bin %> <%= command.id %> pro',
    '<%= config.bin %> <%= command.id %> pro --annual --currency EUR --team acme',
  ];

  static override args = { plan: Args.string({ description: 'Slug of the plan', required: true }) };

  static override flags = {
    team: teamFlag,
    annual: Flags.boolean({ description: 'Pay per year instead of per month', env: 'TOLLGATE_ANNUAL' }),
    currency: Flags.string({
      description: 'Currency to pay in: USD, EUR or GBP [default: USD]',
      env: 'TOLLGATE_CURRENCY',
      parse: async (value) => value.toUpperCase(),
    }),
    browser: Flags.boolean({
      description: 'On a terminal, open the Checkout URL in the browser (--no-browser only prints it)',
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const answer = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/subscription`, {
      plan: this.args.plan,
      interval: this.flags.annual ? 'year' : 'month',
      ...(this.flags.currency ? { currency: this.flags.currency } : {}),
    })) as SubscriptionDocument | CheckoutDocument;
    if ('checkout_url' in answer) {
      if (this.jsonMode) {
        this.outJson(answer);
        return;
      }
      this.out(answer.checkout_url);
      // Never without a terminal: a script or CI gets the URL and nothing else happens.
      if (this.flags.browser && process.stdout.isTTY === true && process.stdin.isTTY === true) {
        openInBrowser(answer.checkout_url);
        this.note('Opened the Checkout page in your browser; the subscription starts once the payment completes.');
      } else {
        this.note('Open this URL to pay; the subscription starts once the payment completes.');
      }
      return;
    }
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    this.out(renderFields(subscriptionFields(answer), { tty: process.stdout.isTTY === true }));
  }
}
