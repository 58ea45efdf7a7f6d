import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { confirmAction, requireConfirmationMeans } from '../../confirm-action.js';
import { teamFlag } from '../../team-flag.js';
import type { WebhookEndpointBody } from '../../webhook-fields.js';

export default class WebhooksRemove extends TollgateCommand<typeof WebhooksRemove> {
  static override summary = 'Remove a webhook endpoint with its delivery history.';

  static override description =
    'Cannot be undone: deliveries still pending for it are dropped. Asks for confirmation on a terminal; without a terminal, pass --yes. Needs webhooks:write.';

  static override examples = ['<%= config.bin %> <%= command.id %> 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11 --yes'];

  static override args = { endpoint: Args.string({ description: 'Endpoint id', required: true }) };

  static override flags = {
    team: teamFlag,
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
  };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'the removal' });
    const team = await this.currentTeam(this.flags.team);
    const path = `/v1/teams/${encodeURIComponent(team)}/webhooks/${encodeURIComponent(this.args.endpoint)}`;
    // Looked up first so the question names the URL, and an unknown endpoint fails before asking.
    const endpoint = (await this.call('GET', path)) as WebhookEndpointBody;
    await confirmAction({
      yes: this.flags.yes,
      question: `Remove the endpoint ${endpoint.url}? Its pending deliveries will not be sent.`,
    });
    await this.call('DELETE', path);
    if (this.jsonMode) this.outJson({ id: endpoint.id, url: endpoint.url, removed: true });
    else this.out(`Removed ${endpoint.url}.`);
  }
}
