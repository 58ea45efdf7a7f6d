import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { operatorPlanColumns, type PlanDocument, planColumns } from '../../plan-flags.js';

export default class PlansList extends TollgateCommand<typeof PlansList> {
  static override summary = 'List the plans on offer: the newest version of each.';

  static override description =
    'Everyone signed in sees the catalog; operators also see how many live subscriptions each plan has (all versions). With --json: {"plans": [...]}.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --archived --json',
  ];

  static override flags = {
    archived: Flags.boolean({ description: 'Include archived plans' }),
  };

  async run(): Promise<void> {
    const answer = (await this.call('GET', `/v1/plans${this.flags.archived ? '?archived=true' : ''}`)) as {
      plans: PlanDocument[];
    };
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    if (answer.plans.length === 0) {
      this.note('No plans yet; an operator creates one with `tollgate plans create` or `tollgate plans seed`.');
      return;
    }
    const operator = answer.plans.some((plan) => plan.subscribers !== undefined);
    this.out(
      renderTable(answer.plans, operator ? operatorPlanColumns : planColumns, {
        tty: process.stdout.isTTY === true,
      }).trimEnd(),
    );
  }
}
