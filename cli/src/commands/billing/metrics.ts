import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';

interface RatioBody {
  numerator: number;
  denominator: number;
  rate: string | null;
}

interface DayBody {
  day: string;
  recorded: boolean;
  mrr: string | null;
  arr: string | null;
  arpu: string | null;
  subscriptions: { trialing: number; active: number; past_due: number; unpaid: number } | null;
  paying_teams: number | null;
  trial_conversion: RatioBody | null;
  logo_churn: RatioBody | null;
  revenue_churn: RatioBody | null;
}

interface MetricsBody {
  base_currency: string;
  from: string;
  to: string;
  days: DayBody[];
}

/** "0.3758" as "37.58%"; "-" when there is nothing to divide by or nothing recorded. */
const percent = (ratio: RatioBody | null) => {
  if (!ratio || ratio.rate === null) return '-';
  const [whole = '0', fraction = ''] = (Number(ratio.rate) * 100).toFixed(2).split('.');
  return `${whole}.${fraction}%`;
};

export default class BillingMetrics extends TollgateCommand<typeof BillingMetrics> {
  static override summary = 'Revenue metrics per day: MRR, ARR, subscriptions, trial conversion, churn, ARPU.';

  static override description =
    'Figures per UTC day in the base currency (TOLLGATE_BASE_CURRENCY), from the daily snapshots the worker records; days without one show "-". Definitions: docs/billing.md "Revenue metrics". Operators only.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --from 2026-03-01 --to 2026-03-31 --json',
  ];

  static override flags = {
    from: Flags.string({
      description: 'First day, YYYY-MM-DD [default: 29 days before --to]',
      env: 'TOLLGATE_METRICS_FROM',
    }),
    to: Flags.string({ description: 'Last day, YYYY-MM-DD [default: today]', env: 'TOLLGATE_METRICS_TO' }),
  };

  async run(): Promise<void> {
    const query = new URLSearchParams();
    if (this.flags.from !== undefined) query.set('from', this.flags.from);
    if (this.flags.to !== undefined) query.set('to', this.flags.to);
    const suffix = query.size > 0 ? `?${query}` : '';
    const body = (await this.call('GET', `/v1/billing/metrics${suffix}`)) as MetricsBody;
    if (this.jsonMode) {
      this.outJson(body);
      return;
    }
    const dash = (value: string | number | null | undefined) =>
      value === null || value === undefined ? '-' : String(value);
    this.out(
      renderTable(
        body.days,
        [
          { header: 'day', value: (day) => day.day },
          { header: 'mrr', value: (day) => dash(day.mrr) },
          { header: 'arr', value: (day) => dash(day.arr) },
          { header: 'active', value: (day) => dash(day.subscriptions?.active) },
          { header: 'trialing', value: (day) => dash(day.subscriptions?.trialing) },
          { header: 'trial→paid', value: (day) => percent(day.trial_conversion) },
          { header: 'logo churn', value: (day) => percent(day.logo_churn) },
          { header: 'revenue churn', value: (day) => percent(day.revenue_churn) },
          { header: 'arpu', value: (day) => dash(day.arpu) },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
    this.note(`In ${body.base_currency}, ${body.from} to ${body.to}.`);
  }
}
