import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { teamFlag } from '../../team-flag.js';
import { type WebhookEndpointBody, webhookEventTypes } from '../../webhook-fields.js';

export default class WebhooksAdd extends TollgateCommand<typeof WebhooksAdd> {
  static override summary =
    'Add a webhook endpoint: Tollgate POSTs the chosen events to it, signed (secret printed once).';

  static override description =
    "Prints the signing secret (whsec_...) alone on standard output, so SECRET=$(tollgate webhooks add ...) keeps it, and the endpoint on standard error. It is shown this once; verify each delivery's Tollgate-Signature header with it (docs/webhooks.md). The URL must be http(s) and, unless the operator set TOLLGATE_WEBHOOKS_ALLOW_PRIVATE, not on a private or loopback address. Needs webhooks:write (developers and admins).";

  static override examples = [
    '<%= config.bin %> <%= command.id %> https://example.com/hooks/tollgate --event invoice.paid --event invoice.finalized',
    'SECRET=$(<%= config.bin %> <%= command.id %> https://example.com/hooks --event key.rotated --description "key inventory")',
  ];

  static override args = { url: Args.string({ description: 'http(s) URL the events are POSTed to', required: true }) };

  static override flags = {
    team: teamFlag,
    event: Flags.string({
      description: 'An event type to send (repeatable)',
      multiple: true,
      required: true,
      options: [...webhookEventTypes],
    }),
    description: Flags.string({ description: 'What the endpoint is for', env: 'TOLLGATE_WEBHOOK_DESCRIPTION' }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const created = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/webhooks`, {
      url: this.args.url,
      events: this.flags.event,
      ...(this.flags.description ? { description: this.flags.description } : {}),
    })) as WebhookEndpointBody;
    if (this.jsonMode) {
      this.outJson(created);
      return;
    }
    this.out(created.secret ?? '');
    this.note(`Added the endpoint ${created.id} for ${created.events.join(', ')} at ${created.url}.`);
    this.note(
      this.style(
        'dim',
        'The signing secret is shown this once: store it now. Send a test with the API (POST .../webhooks/<id>/test); watch deliveries with `tollgate webhooks deliveries`.',
        'stderr',
      ),
    );
  }
}
