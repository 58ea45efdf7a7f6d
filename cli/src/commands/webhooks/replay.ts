import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { teamFlag } from '../../team-flag.js';
import type { WebhookDeliveryBody } from '../../webhook-fields.js';

export default class WebhooksReplay extends TollgateCommand<typeof WebhooksReplay> {
  static override summary = "Send a delivery's event to its endpoint again.";

  static override description =
    'Makes a new delivery of the same event (same Tollgate-Event-Id, so receivers can tell it is a repeat) that the worker sends within a second, then retries for 3 days like any other. Prints the new delivery id. Needs webhooks:write.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11',
    '<%= config.bin %> <%= command.id %> 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11 --json',
  ];

  static override args = { delivery: Args.string({ description: 'Delivery id', required: true }) };

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const replayed = (await this.call(
      'POST',
      `/v1/teams/${encodeURIComponent(team)}/webhook-deliveries/${encodeURIComponent(this.args.delivery)}/replay`,
    )) as WebhookDeliveryBody;
    if (this.jsonMode) {
      this.outJson(replayed);
      return;
    }
    this.out(replayed.id);
    this.note(`Queued ${replayed.event_type} (event ${replayed.event_id}) for ${replayed.endpoint_url} again.`);
  }
}
