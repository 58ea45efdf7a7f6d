import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { openInBrowser } from '../../browser-login.js';
import { renderFields } from '../../output/fields.js';
import { teamFlag } from '../../team-flag.js';

interface CreditPurchaseDocument {
  id: string;
  pack: string;
  currency: string;
  amount: string;
  status: 'pending' | 'paid' | 'refunded';
  provider: 'manual' | 'stripe';
  checkout_url: string | null;
  created_at: string;
}

export default class CreditsBuy extends TollgateCommand<typeof CreditsBuy> {
  static override summary = 'Buy a credit pack for the team.';

  static override description =
    "Priced in the team's currency. Through Stripe it prints the Checkout URL on standard output and, on a terminal, opens it in the browser (--no-browser only prints it); the credits are granted when the payment completes. Without Stripe the purchase waits for an operator to confirm it. Needs billing:write (team admins). With --json: the purchase, with checkout_url.";

  static override examples = [
    '<%= config.bin %> <%= command.id %> million-calls',
    '<%= config.bin %> <%= command.id %> million-calls --team acme --json',
  ];

  static override args = { pack: Args.string({ description: 'Slug of the credit pack', required: true }) };

  static override flags = {
    team: teamFlag,
    browser: Flags.boolean({
      description: 'On a terminal, open the Checkout URL in the browser (--no-browser only prints it)',
      default: true,
      allowNo: true,
    }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const purchase = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/credits/purchases`, {
      pack: this.args.pack,
    })) as CreditPurchaseDocument;
    if (this.jsonMode) {
      this.outJson(purchase);
      return;
    }
    if (purchase.checkout_url) {
      this.out(purchase.checkout_url);
      // Never without a terminal: a script or CI gets the URL and nothing else happens.
      if (this.flags.browser && process.stdout.isTTY === true && process.stdin.isTTY === true) {
        openInBrowser(purchase.checkout_url);
        this.note('Opened the Checkout page in your browser; the credits are granted once the payment completes.');
      } else {
        this.note('Open this URL to pay; the credits are granted once the payment completes.');
      }
      return;
    }
    this.out(
      renderFields(
        [
          ['purchase', purchase.id],
          ['pack', purchase.pack],
          ['price', `${purchase.amount} ${purchase.currency}`],
          ['status', purchase.status],
        ],
        { tty: process.stdout.isTTY === true },
      ),
    );
    this.note('An operator confirms the payment; the credits are granted then.');
  }
}
