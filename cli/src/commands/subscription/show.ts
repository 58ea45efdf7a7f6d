import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';
import { type SubscriptionDocument, subscriptionFields } from '../../subscription-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class SubscriptionShow extends TollgateCommand<typeof SubscriptionShow> {
  static override summary = "Show the team's subscription.";

  static override description =
    'Its plan, status (trialing, active, past_due, canceled, unpaid), price, period, a downgrade or a switch to monthly billing waiting for the period end, until when a past-due subscription is still served, and the URL of a Checkout the team started and can still pay (expired ones are not shown). Needs billing:read (team admins).';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const subscription = (await this.call(
      'GET',
      `/v1/teams/${encodeURIComponent(team)}/subscription`,
    )) as SubscriptionDocument;
    if (this.jsonMode) this.outJson(subscription);
    else this.out(renderFields(subscriptionFields(subscription), { tty: process.stdout.isTTY === true }));
  }
}
