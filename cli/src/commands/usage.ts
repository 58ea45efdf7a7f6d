import { Flags } from '@oclif/core';
import { TollgateCommand } from '../base-command.js';
import { formatBytes } from '../output/format-bytes.js';
import { renderTable } from '../output/table.js';
import { teamFlag } from '../team-flag.js';

interface Counts {
  calls: number;
  request_bytes: number;
  response_bytes: number;
  bandwidth_bytes: number;
  overage_calls: number;
  status: Record<'2xx' | '3xx' | '4xx' | '5xx', number>;
  latency_ms_avg: number | null;
  latency_ms_max: number | null;
}

interface UsageAnswer {
  team: string;
  from: string;
  to: string;
  group_by: 'hour' | 'day';
  periods: (Counts & { start: string })[];
  totals: Counts;
  metrics: { day: string; metric: string; events: number; sum: number; max: number; last: number }[];
  /** The plan's call quota in the team's current billing period. */
  quota: {
    plan: string;
    limit: number | null;
    used_in_period: number;
    remaining: number | null;
    overage_calls: number;
    overage_allowed: boolean;
    period_start: string;
    period_end: string;
  } | null;
}

/** One line under the table: what is left of the quota in the current billing period. */
function quotaLine(quota: NonNullable<UsageAnswer['quota']>): string {
  const period = `billing period ${quota.period_start.slice(0, 10)} to ${quota.period_end.slice(0, 10)}`;
  if (quota.limit === null) {
    return `quota\tunlimited (plan ${quota.plan}); ${quota.used_in_period} calls this ${period}`;
  }
  const beyond = quota.overage_allowed ? 'then overage' : 'then refused (429)';
  const overage = quota.overage_calls > 0 ? `, ${quota.overage_calls} overage` : '';
  return `quota\t${quota.remaining} of ${quota.limit} calls left (plan ${quota.plan}, ${beyond}; ${quota.used_in_period} used${overage}) in the ${period}`;
}

export default class Usage extends TollgateCommand<typeof Usage> {
  static override summary = "Show the team's metered calls, bandwidth and overage by hour or day.";

  static override description =
    'Calls the gateway served for the team, request and response bytes, calls beyond the quota (overage) and errors, per period, from the rollups (they trail the gateway by about 10 seconds), plus the metrics reported through POST /v1/usage per day, and under them the calls left of the plan quota in the current billing period (whatever --from and --to say). Bytes are rounded in the table (SI units) and exact with --json. Needs usage:read (every member).';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --api weather --from 2026-06-01 --to 2026-06-08 --group-by hour',
    '<%= config.bin %> <%= command.id %> --key 3f9c2a1b --json',
  ];

  static override flags = {
    team: teamFlag,
    api: Flags.string({ description: 'Only this API (slug or id)', env: 'TOLLGATE_USAGE_API' }),
    key: Flags.string({ description: 'Only this API key (its id)', env: 'TOLLGATE_USAGE_KEY' }),
    from: Flags.string({
      description: 'Start, an ISO date or time (UTC) [default: the first of this month]',
      env: 'TOLLGATE_USAGE_FROM',
    }),
    to: Flags.string({ description: 'End, exclusive, an ISO date or time [default: now]', env: 'TOLLGATE_USAGE_TO' }),
    'group-by': Flags.string({
      description: 'Period of each row',
      options: ['hour', 'day'],
      default: 'day',
      env: 'TOLLGATE_USAGE_GROUP_BY',
    }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const query = new URLSearchParams({ group_by: this.flags['group-by'] });
    for (const name of ['api', 'key', 'from', 'to'] as const) {
      const value = this.flags[name];
      if (value !== undefined) query.set(name, value);
    }
    const usage = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/usage?${query}`)) as UsageAnswer;
    if (this.jsonMode) {
      this.outJson(usage);
      return;
    }
    const tty = process.stdout.isTTY === true;
    const label = (start: string) => (usage.group_by === 'day' ? start.slice(0, 10) : `${start.slice(0, 13)}:00Z`);
    const rows = [...usage.periods.map((period) => ({ label: label(period.start), counts: period as Counts }))];
    rows.push({ label: 'total', counts: usage.totals });
    this.out(
      renderTable(
        rows,
        [
          { header: usage.group_by, value: (row) => row.label },
          { header: 'calls', value: (row) => String(row.counts.calls) },
          { header: 'in', value: (row) => formatBytes(row.counts.request_bytes) },
          { header: 'out', value: (row) => formatBytes(row.counts.response_bytes) },
          { header: 'overage', value: (row) => String(row.counts.overage_calls) },
          { header: 'errors', value: (row) => String(row.counts.status['4xx'] + row.counts.status['5xx']) },
          {
            header: 'avg ms',
            value: (row) => (row.counts.latency_ms_avg === null ? '-' : row.counts.latency_ms_avg.toFixed(1)),
          },
        ],
        { tty },
      ).trimEnd(),
    );
    if (usage.metrics.length > 0) {
      this.out('');
      this.out(
        renderTable(
          usage.metrics,
          [
            { header: 'day', value: (day) => day.day },
            { header: 'metric', value: (day) => day.metric },
            { header: 'sum', value: (day) => String(day.sum) },
            { header: 'max', value: (day) => String(day.max) },
            { header: 'last', value: (day) => String(day.last) },
          ],
          { tty },
        ).trimEnd(),
      );
    }
    if (usage.quota) {
      this.out('');
      this.out(quotaLine(usage.quota));
    }
    if (usage.periods.length === 0) this.note(`No calls between ${usage.from} and ${usage.to}.`);
  }
}
