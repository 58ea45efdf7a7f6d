import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';
import { type SubscriptionDocument, subscriptionFields } from '../../subscription-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class SubscriptionResume extends TollgateCommand<typeof SubscriptionResume> {
  static override summary = 'Undo a cancel at the end of the period.';

  static override description = 'The subscription renews as before. Needs billing:write (team admins).';

  static override examples = ['<%= config.bin %> <%= command.id %>'];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const subscription = (await this.call(
      'POST',
      `/v1/teams/${encodeURIComponent(team)}/subscription/resume`,
    )) as SubscriptionDocument;
    if (this.jsonMode) this.outJson(subscription);
    else this.out(renderFields(subscriptionFields(subscription), { tty: process.stdout.isTTY === true }));
  }
}
