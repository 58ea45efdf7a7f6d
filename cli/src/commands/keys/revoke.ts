import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { confirmAction, requireConfirmationMeans } from '../../confirm-action.js';
import type { ApiKeyBody } from '../../key-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class KeysRevoke extends TollgateCommand<typeof KeysRevoke> {
  static override summary = 'Revoke an API key: every gateway refuses it within a second.';

  static override description =
    'Cannot be undone: calls with the key get 401 key_revoked. Asks for confirmation on a terminal; without a terminal, pass --yes. Needs keys:write.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11',
    '<%= config.bin %> <%= command.id %> tg_live_Ab3dE9fGh1JkLmNo --yes --json',
  ];

  static override args = { key: Args.string({ description: 'Key id or prefix (tg_live_<id>)', required: true }) };

  static override flags = {
    team: teamFlag,
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
  };

  async run(): Promise<void> {
    requireConfirmationMeans({ yes: this.flags.yes, action: 'the revocation' });
    const team = await this.currentTeam(this.flags.team);
    const path = `/v1/teams/${encodeURIComponent(team)}/keys/${encodeURIComponent(this.args.key)}`;
    // Looked up first so the question names the key, and an unknown one fails before asking.
    const key = (await this.call('GET', path)) as ApiKeyBody;
    await confirmAction({
      yes: this.flags.yes,
      question: `Revoke ${key.prefix}...${key.name ? ` (${key.name})` : ''}? Calls with it will be refused.`,
    });
    await this.call('DELETE', `/v1/teams/${encodeURIComponent(team)}/keys/${encodeURIComponent(key.id)}`);
    if (this.jsonMode) this.outJson({ id: key.id, prefix: key.prefix, revoked: true });
    else this.out(`Revoked ${key.prefix}.`);
  }
}
