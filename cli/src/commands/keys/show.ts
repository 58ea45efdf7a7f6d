import { Args } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type ApiKeyBody, keyFields } from '../../key-fields.js';
import { renderFields } from '../../output/fields.js';
import { teamFlag } from '../../team-flag.js';

export default class KeysShow extends TollgateCommand<typeof KeysShow> {
  static override summary = 'Show one API key: its restrictions, limits and dates (never its secret).';

  static override description =
    'The key is named by its id or its prefix (tg_live_<id>). When stdout is not a terminal each line is the field and its value separated by a tab. Needs keys:read (every member).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11',
    '<%= config.bin %> <%= command.id %> tg_live_Ab3dE9fGh1JkLmNo --json',
  ];

  static override args = { key: Args.string({ description: 'Key id or prefix (tg_live_<id>)', required: true }) };

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const key = (await this.call(
      'GET',
      `/v1/teams/${encodeURIComponent(team)}/keys/${encodeURIComponent(this.args.key)}`,
    )) as ApiKeyBody;
    if (this.jsonMode) {
      this.outJson(key);
      return;
    }
    this.out(renderFields(keyFields(key), { tty: process.stdout.isTTY === true }));
  }
}
