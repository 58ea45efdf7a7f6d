import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { confirmAction, requireConfirmationMeans } from '../../confirm-action.js';
import { type PlanDocument, withPlanHint } from '../../plan-flags.js';

export default class PlansArchive extends TollgateCommand<typeof PlansArchive> {
  static override summary = 'Archive a plan (operators): no new subscriptions; existing ones keep it.';

  static override description =
    'Archives every version of the plan; an archived plan cannot change or be unarchived. The default plan cannot be archived (plan_is_default). Asks for confirmation on a terminal; without a terminal, pass --yes.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> basic',
    '<%= config.bin %> <%= command.id %> basic --yes --json',
  ];

  static override args = { plan: Args.string({ description: 'Slug of the plan', required: true }) };

  static override flags = {
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
  };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'archiving the plan' });
    await confirmAction({
      yes: this.flags.yes,
      question: `Archive the plan ${this.args.plan}? No team can subscribe to it afterwards.`,
    });
    const plan = (await this.call('POST', `/v1/plans/${encodeURIComponent(this.args.plan)}/archive`).catch(
      (error: unknown) => {
        throw withPlanHint(error);
      },
    )) as PlanDocument;
    if (this.jsonMode) {
      this.outJson(plan);
      return;
    }
    const kept = plan.subscribers_all_versions ?? 0;
    this.out(
      `Archived ${plan.slug}: no new subscriptions.${kept > 0 ? ` ${kept} live subscription(s) keep their version.` : ''}`,
    );
  }
}
