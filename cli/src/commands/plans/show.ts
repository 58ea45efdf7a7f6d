import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';
import { type PlanDocument, planFields, withPlanHint } from '../../plan-flags.js';

export default class PlansShow extends TollgateCommand<typeof PlansShow> {
  static override summary = 'Show a plan: its newest version, or --version N.';

  static override description =
    'Prices (annual ones derived from the discount are marked "derived"), included quotas, overage prices, rate limits and entitlements; operators also see its subscribers. When stdout is not a terminal each line is the field and its value separated by a tab.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> pro',
    '<%= config.bin %> <%= command.id %> pro --version 1 --json',
  ];

  static override args = { plan: Args.string({ description: 'Slug of the plan', required: true }) };

  static override flags = {
    version: Flags.integer({ description: 'A version of the plan [default: the newest]', min: 1 }),
  };

  async run(): Promise<void> {
    const query = this.flags.version === undefined ? '' : `?version=${this.flags.version}`;
    const plan = (await this.call('GET', `/v1/plans/${encodeURIComponent(this.args.plan)}${query}`).catch(
      (error: unknown) => {
        throw withPlanHint(error);
      },
    )) as PlanDocument;
    if (this.jsonMode) this.outJson(plan);
    else this.out(renderFields(planFields(plan), { tty: process.stdout.isTTY === true }));
  }
}
