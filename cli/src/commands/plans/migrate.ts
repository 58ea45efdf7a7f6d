import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { CliError, exitCodes } from '../../cli-error.js';
import { renderTable } from '../../output/table.js';
import { withPlanHint } from '../../plan-flags.js';
import { money } from '../../subscription-fields.js';

interface Proration {
  credit_minor: number;
  charge_minor: number;
  net_minor: number;
}

/** The answer of POST /v1/plans/:plan/migrate. */
interface MigrationAnswer {
  run_id: string | null;
  plan: string;
  from_versions: number[];
  to_version: number;
  at: 'period_end' | 'now';
  dry_run: boolean;
  migrated: {
    subscription_id: string;
    team_id: string;
    from_version: number;
    to_version: number;
    currency: string;
    at: string;
    proration?: Proration | null;
  }[];
  skipped: { subscription_id: string; team_id: string; from_version: number; reason: string; message: string }[];
}

/** A version flag: a whole number from 1, checked here so a bad one is a usage error (exit 2) before any call. */
function versionFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(value)) {
    throw new CliError('usage_error', `--${name} must be a version number such as 2`, {
      hint: 'tollgate plans show <plan> shows its newest version',
      exitCode: exitCodes.usage,
    });
  }
  return Number(value);
}

export default class PlansMigrate extends TollgateCommand<typeof PlansMigrate> {
  static override summary = 'Move subscribers of older versions of a plan to a newer one (operators).';

  static override description =
    'Every live subscription on --from-version (default: every older version) moves to --to-version (default: the newest), keeping its currency and interval: at its current period end (default; the renewal applies it), or with --now at once, prorated like an upgrade. Subscriptions that cannot move are listed as skipped with a reason (price_not_offered, pending_change, payment_required, already_scheduled, checkout_required, provider_error, changed_meanwhile); the others still move. --dry-run shows what would happen and writes nothing. Running it again moves nothing more. With --json: the API answer.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> pro --dry-run',
    '<%= config.bin %> <%= command.id %> pro',
    '<%= config.bin %> <%= command.id %> pro --from-version 1 --to-version 3 --now --json',
  ];

  static override args = { plan: Args.string({ description: 'Slug of the plan', required: true }) };

  static override flags = {
    'from-version': Flags.string({
      description: 'Only subscribers of this version (default: every version older than the target)',
      helpValue: 'N',
    }),
    'to-version': Flags.string({ description: 'The version to move to (default: the newest)', helpValue: 'N' }),
    now: Flags.boolean({
      description: 'Move at once, prorating the rest of the period, instead of at each period end',
    }),
    'dry-run': Flags.boolean({ description: 'Show what would move and what would be skipped; write nothing' }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    const fromVersion = versionFlag('from-version', flags['from-version']);
    const toVersion = versionFlag('to-version', flags['to-version']);
    const body = {
      ...(fromVersion === undefined ? {} : { from_version: fromVersion }),
      ...(toVersion === undefined ? {} : { to_version: toVersion }),
      at: flags.now ? 'now' : 'period_end',
      dry_run: flags['dry-run'],
    };
    const answer = (await this.call('POST', `/v1/plans/${encodeURIComponent(this.args.plan)}/migrate`, body).catch(
      (error: unknown) => {
        throw withPlanHint(error);
      },
    )) as MigrationAnswer;
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    const tty = process.stdout.isTTY === true;
    if (answer.migrated.length > 0) {
      this.out(
        renderTable(
          answer.migrated,
          [
            { header: 'subscription', value: (row) => row.subscription_id },
            { header: 'team', value: (row) => row.team_id },
            { header: 'from', value: (row) => String(row.from_version) },
            { header: 'to', value: (row) => String(row.to_version) },
            { header: 'at', value: (row) => row.at },
            {
              header: 'prorated',
              value: (row) => (row.proration ? `${money(row.proration.net_minor, row.currency)} net` : ''),
            },
          ],
          { tty },
        ),
      );
    }
    if (answer.skipped.length > 0) {
      if (answer.migrated.length > 0) this.out('');
      this.out(
        renderTable(
          answer.skipped,
          [
            { header: 'skipped', value: (row) => row.subscription_id },
            { header: 'team', value: (row) => row.team_id },
            { header: 'from', value: (row) => String(row.from_version) },
            { header: 'reason', value: (row) => row.reason },
            { header: 'message', value: (row) => row.message },
          ],
          { tty },
        ),
      );
    }
    const versions = `version${answer.from_versions.length > 1 ? 's' : ''} ${answer.from_versions.join(', ')}`;
    const when = answer.at === 'now' ? 'now' : 'at their period end';
    const moved = answer.dry_run
      ? `Dry run: ${answer.migrated.length} subscription(s) would move`
      : `${answer.migrated.length} subscription(s) ${answer.at === 'now' ? 'moved' : 'scheduled to move'}`;
    this.out(
      `${moved} from ${answer.plan} ${versions} to version ${answer.to_version} ${when}; ${answer.skipped.length} skipped.${answer.dry_run ? ' Nothing was written.' : ''}`,
    );
  }
}
