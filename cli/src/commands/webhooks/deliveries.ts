import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';
import { deliveryStatuses, type WebhookDeliveryBody } from '../../webhook-fields.js';

export default class WebhooksDeliveries extends TollgateCommand<typeof WebhooksDeliveries> {
  static override summary = "List the team's webhook deliveries, newest first.";

  static override description =
    'Each delivery is one event sent to one endpoint: pending (not tried yet), failed (retrying: 30s, 1m, 2m, ... up to every 6h), succeeded (a 2xx answer) or exhausted (no success within 3 days). Replay one with `tollgate webhooks replay <id>`. Needs webhooks:read.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --status exhausted --endpoint 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11 --json',
  ];

  static override flags = {
    team: teamFlag,
    status: Flags.string({ description: 'Only deliveries in this state', options: [...deliveryStatuses] }),
    endpoint: Flags.string({ description: 'Only deliveries to this endpoint id' }),
    limit: Flags.integer({ description: 'At most this many (1-200)', default: 50, min: 1, max: 200 }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const query = new URLSearchParams({ limit: String(this.flags.limit) });
    if (this.flags.status) query.set('status', this.flags.status);
    if (this.flags.endpoint) query.set('endpoint', this.flags.endpoint);
    const { deliveries } = (await this.call(
      'GET',
      `/v1/teams/${encodeURIComponent(team)}/webhook-deliveries?${query}`,
    )) as { deliveries: WebhookDeliveryBody[] };
    if (this.jsonMode) {
      this.outJson({ deliveries });
      return;
    }
    if (deliveries.length === 0) {
      this.note('No deliveries match.');
      return;
    }
    this.out(
      renderTable(
        deliveries,
        [
          { header: 'id', value: (delivery) => delivery.id },
          { header: 'event', value: (delivery) => delivery.event_type },
          { header: 'status', value: (delivery) => delivery.status },
          { header: 'attempts', value: (delivery) => String(delivery.attempt_count) },
          { header: 'last answer', value: (delivery) => lastAnswer(delivery) },
          { header: 'next attempt', value: (delivery) => delivery.next_attempt_at ?? '' },
          { header: 'endpoint', value: (delivery) => delivery.endpoint_url },
          { header: 'created', value: (delivery) => delivery.created_at },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}

function lastAnswer(delivery: WebhookDeliveryBody): string {
  if (delivery.last_status_code !== null) return String(delivery.last_status_code);
  return delivery.last_error ?? '';
}
