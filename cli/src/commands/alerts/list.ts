import { type AlertThresholdsBody, describeAlert } from '../../alert-fields.js';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

export default class AlertsList extends TollgateCommand<typeof AlertsList> {
  static override summary = "List the team's usage alert thresholds.";

  static override description =
    "Quota thresholds (a percentage of a plan quota) and spend thresholds (overage charges in the team's currency). Needs usage:read (every member).";

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const alerts = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/alerts`)) as AlertThresholdsBody;
    if (this.jsonMode) {
      this.outJson(alerts);
      return;
    }
    const rows = [
      ...alerts.quota.map((alert) => ({ kind: 'quota', key: alert.key, text: describeAlert(alert) })),
      ...alerts.spend.map((alert) => ({
        kind: 'spend',
        key: alert.key,
        text: describeAlert({ ...alert, metric: null, percent: null }),
      })),
    ];
    if (rows.length === 0) {
      this.note('No usage alerts; set some with `tollgate alerts set --quota calls:80`.');
      return;
    }
    this.out(
      renderTable(
        rows,
        [
          { header: 'kind', value: (row) => row.kind },
          { header: 'threshold', value: (row) => row.text },
          { header: 'key', value: (row) => row.key },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
