import { Args } from '@oclif/core';
import { type ApiDocument, apiFields } from '../../api-flags.js';
import { TollgateCommand } from '../../base-command.js';
import { renderFields } from '../../output/fields.js';

export default class ApisShow extends TollgateCommand<typeof ApisShow> {
  static override summary = 'Show an API: where it is served and, for operators, its upstreams and policies.';

  static override description =
    'When stdout is not a terminal each line is the field and its value separated by a tab.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> weather',
    '<%= config.bin %> <%= command.id %> weather --json',
  ];

  static override args = { api: Args.string({ description: 'Slug or id of the API', required: true }) };

  async run(): Promise<void> {
    const api = (await this.call('GET', `/v1/apis/${encodeURIComponent(this.args.api)}`)) as ApiDocument;
    if (this.jsonMode) this.outJson(api);
    else this.out(renderFields(apiFields(api), { tty: process.stdout.isTTY === true }));
  }
}
