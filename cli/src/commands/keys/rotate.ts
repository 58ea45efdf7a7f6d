import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type ApiKeyBody, durationFlag } from '../../key-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class KeysRotate extends TollgateCommand<typeof KeysRotate> {
  static override summary = 'Give an API key a new secret (printed once); the old one works for a grace period.';

  static override description =
    'Prints the new key alone on standard output. Its prefix stays the same; only the secret changes. The old secret keeps working for --grace (default 24h, at most 30d; 0 stops it at once), so services can switch over; a secret from before an earlier rotation stops at once. Every gateway sees the change within a second. Needs keys:write.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> 5b0c6f9e-8d1d-4c43-9f55-0f4f8d4c2a11',
    'KEY=$(<%= config.bin %> <%= command.id %> tg_live_Ab3dE9fGh1JkLmNo --grace 1h)',
    '<%= config.bin %> <%= command.id %> tg_live_Ab3dE9fGh1JkLmNo --grace 0 --json',
  ];

  static override args = { key: Args.string({ description: 'Key id or prefix (tg_live_<id>)', required: true }) };

  static override flags = {
    team: teamFlag,
    grace: Flags.string({
      description: 'How long the old secret keeps working, e.g. 24h, 30m, or 0',
      env: 'TOLLGATE_KEY_GRACE',
      default: '24h',
    }),
  };

  async run(): Promise<void> {
    const grace = durationFlag('grace', this.flags.grace, { allowZero: true });
    const team = await this.currentTeam(this.flags.team);
    const rotated = (await this.call(
      'POST',
      `/v1/teams/${encodeURIComponent(team)}/keys/${encodeURIComponent(this.args.key)}/rotate`,
      { grace },
    )) as ApiKeyBody;
    if (this.jsonMode) {
      this.outJson(rotated);
      return;
    }
    this.out(rotated.key ?? '');
    this.note(
      rotated.previous_secret_expires_at
        ? `Rotated ${rotated.prefix}...: the old secret works until ${rotated.previous_secret_expires_at}.`
        : `Rotated ${rotated.prefix}...: the old secret no longer works.`,
    );
    this.note(this.style('dim', 'The new key is shown this once: store it now.', 'stderr'));
  }
}
