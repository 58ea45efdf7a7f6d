import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { type PlanDocument, planBody, planFlags, withPlanHint } from '../../plan-flags.js';

/** "Pro Annual" -> "pro-annual", the server's slug rules. */
function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}

export default class PlansCreate extends TollgateCommand<typeof PlansCreate> {
  static override summary = 'Create a plan (operators).';

  static override description =
    'Version 1 of a new plan. Amounts are in major units ("49.00"); an annual price is either given (--price USD:year:499) or derived from the monthly one with --annual-discount. A metric with overage prices needs an --included quota (0 bills every unit) and a price in every currency the plan is priced in. Needs the operator permission plans:manage. Gateways apply a plan change within 30 seconds.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --name Pro --price USD:month:49.00 --price EUR:month:45 --price GBP:month:39 --annual-discount 15 --included calls=100000',
    '<%= config.bin %> <%= command.id %> --name Pro --price USD:month:49 --included calls=100000 --overage-allowed --overage \'calls:USD={"model":"graduated","tiers":[{"up_to":1000000,"unit_price":"0.0005"},{"up_to":null,"unit_price":"0.0003"}]}\'',
    '<%= config.bin %> <%= command.id %> --name Team --price USD:month:99 --included calls=500000 --overage-file plan-overage.json --entitlement sso=true --rate-per-second 50',
  ];

  static override flags = {
    ...planFlags,
    name: Flags.string({ description: 'Name shown to people (1 to 200 characters)', required: true }),
    slug: Flags.string({ description: 'The plan slug teams subscribe with [default: from the name]' }),
  };

  async run(): Promise<void> {
    const slug = this.flags.slug ?? slugify(this.flags.name);
    if (slug === '') {
      throw new CliError('usage_error', 'cannot make a slug from this name', {
        hint: 'pass --slug, like --slug pro',
        exitCode: exitCodes.usage,
      });
    }
    const body = { ...(await planBody(this.flags)), slug };
    const plan = (await this.call('POST', '/v1/plans', body).catch((error: unknown) => {
      throw withPlanHint(error, slug);
    })) as PlanDocument;
    if (this.jsonMode) this.outJson(plan);
    else this.out(`Created the plan ${plan.name} (${plan.slug}), version ${plan.version}.`);
  }
}
