import { TollgateCommand } from '../../base-command.js';
import type { PlanDocument } from '../../plan-flags.js';

export default class PlansSeed extends TollgateCommand<typeof PlansSeed> {
  static override summary = 'Create the example plans Basic, Pro and Enterprise (operators).';

  static override description =
    'Priced in USD, EUR and GBP, to edit with `tollgate plans update`. A plan whose slug (basic, pro, enterprise) exists is left as it is, so running this twice changes nothing. With --json: {"created": [...], "existing": [...], "plans": [...]}.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const answer = (await this.call('POST', '/v1/plans/seed')) as {
      created: string[];
      existing: string[];
      plans: PlanDocument[];
    };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    if (answer.created.length > 0) this.out(`Created ${answer.created.join(', ')}.`);
    if (answer.existing.length > 0) {
      this.out(`Left as they are: ${answer.existing.join(', ')} (they exist already).`);
    }
  }
}
