import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';
import type { WebhookEndpointBody } from '../../webhook-fields.js';

export default class WebhooksList extends TollgateCommand<typeof WebhooksList> {
  static override summary = "List the team's webhook endpoints (never their secrets).";

  static override description =
    'Every endpoint, newest first: its id, URL, the events it receives, whether it is enabled and its description. Needs webhooks:read (developers and admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const { endpoints } = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/webhooks`)) as {
      endpoints: WebhookEndpointBody[];
    };
    if (this.jsonMode) {
      this.outJson({ endpoints });
      return;
    }
    if (endpoints.length === 0) {
      this.note('No webhook endpoints yet; add one with `tollgate webhooks add <url> --event <type>`.');
      return;
    }
    this.out(
      renderTable(
        endpoints,
        [
          { header: 'id', value: (endpoint) => endpoint.id },
          { header: 'url', value: (endpoint) => endpoint.url },
          { header: 'events', value: (endpoint) => endpoint.events.join(',') },
          { header: 'state', value: (endpoint) => (endpoint.enabled ? 'enabled' : 'disabled') },
          { header: 'description', value: (endpoint) => endpoint.description ?? '' },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
