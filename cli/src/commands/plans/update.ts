import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { type PlanDocument, planBody, planFlags, withPlanHint } from '../../plan-flags.js';

interface UpdateAnswer {
  plan: PlanDocument;
  new_version: boolean;
  from_version: number;
  changed: string[];
}

export default class PlansUpdate extends TollgateCommand<typeof PlansUpdate> {
  static override summary = 'Change a plan (operators); each flag replaces what it names.';

  static override description =
    'When live subscriptions use the newest version, the change becomes a new version and they stay on theirs; otherwise the newest version changes in place. --price, --included, --overage and --entitlement replace the whole list when given; each --rate-per-* flag changes its window only. An archived plan cannot change (plan_archived). Giving nothing to change is a usage error (exit 2).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> pro --price USD:month:59 --price EUR:month:55 --price GBP:month:47',
    '<%= config.bin %> <%= command.id %> pro --included calls=200000 --included bandwidth=10000000000 --rate-per-second 100',
    '<%= config.bin %> <%= command.id %> pro --no-overage-allowed --clear-overage',
  ];

  static override args = { plan: Args.string({ description: 'Slug of the plan', required: true }) };

  static override flags = {
    ...planFlags,
    overage: Flags.string({
      description: planFlags.overage.description,
      helpValue: 'METRIC:CUR=PRICE|JSON',
      multiple: true,
      exclusive: ['clear-overage'],
    }),
    'overage-file': Flags.string({
      description: planFlags['overage-file'].description,
      helpValue: 'FILE',
      exclusive: ['clear-overage'],
    }),
    'clear-overage': Flags.boolean({ description: 'Remove every overage price' }),
    entitlement: Flags.string({
      description: planFlags.entitlement.description,
      helpValue: 'NAME=VALUE',
      multiple: true,
      exclusive: ['clear-entitlements'],
    }),
    'clear-entitlements': Flags.boolean({ description: 'Remove every entitlement' }),
  };

  async run(): Promise<void> {
    const body = {
      ...(await planBody(this.flags)),
      ...(this.flags['clear-overage'] ? { overage: {} } : {}),
      ...(this.flags['clear-entitlements'] ? { entitlements: {} } : {}),
    };
    if (Object.keys(body).length === 0) {
      throw new CliError('usage_error', 'nothing to change', {
        hint: 'pass at least one of --name, --description, --price, --annual-discount, --trial-days, --included, --overage, --overage-file, --[no-]overage-allowed, --entitlement, --rate-per-second, --rate-per-minute, --rate-per-hour, --rate-per-day, --clear-overage, --clear-entitlements',
        exitCode: exitCodes.usage,
      });
    }
    const answer = (await this.call('PATCH', `/v1/plans/${encodeURIComponent(this.args.plan)}`, body).catch(
      (error: unknown) => {
        throw withPlanHint(error);
      },
    )) as UpdateAnswer;
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    const { plan } = answer;
    if (answer.changed.length === 0)
      this.out(`Nothing changed: ${plan.slug} version ${plan.version} already says that.`);
    else if (answer.new_version) {
      this.out(
        `Created version ${plan.version} of ${plan.slug} (changed: ${answer.changed.join(', ')}); subscribers of version ${answer.from_version} stay on it.`,
      );
    } else this.out(`Updated ${plan.slug} version ${plan.version} in place (changed: ${answer.changed.join(', ')}).`);
  }
}
