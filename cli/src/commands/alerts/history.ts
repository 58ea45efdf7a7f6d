import { type AlertFiringBody, describeAlert } from '../../alert-fields.js';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

export default class AlertsHistory extends TollgateCommand<typeof AlertsHistory> {
  static override summary = 'The usage alerts that fired, newest first (the last 100).';

  static override description =
    'Each threshold fires at most once per billing period: when, what was used (or spent) then, and the webhook events it sent. Needs usage:read (every member).';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const { firings } = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/alerts/history`)) as {
      firings: AlertFiringBody[];
    };
    if (this.jsonMode) {
      this.outJson({ firings });
      return;
    }
    if (firings.length === 0) {
      this.note('No usage alert has fired yet.');
      return;
    }
    this.out(
      renderTable(
        firings,
        [
          { header: 'fired', value: (firing) => firing.fired_at },
          { header: 'threshold', value: (firing) => describeAlert(firing) },
          {
            header: 'observed',
            value: (firing) =>
              firing.kind === 'quota' ? `${firing.used}/${firing.included}` : `${firing.spend} ${firing.currency}`,
          },
          { header: 'period start', value: (firing) => firing.period_start },
          { header: 'events', value: (firing) => firing.events.join(',') },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
