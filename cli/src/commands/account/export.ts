import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class AccountExport extends TollgateCommand<typeof AccountExport> {
  static override summary = 'Download everything Tollgate holds about you, as JSON.';

  static override description =
    'Profile, teams and roles, sessions, API keys you created, invitations, two-factor status and your audit entries (docs/privacy.md). Written to --output with mode 0600, or printed on stdout.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --output my-tollgate-data.json',
    '<%= config.bin %> <%= command.id %> > my-tollgate-data.json',
  ];

  static override flags = { output: Flags.string({ char: 'o', description: 'File to write (mode 0600)' }) };

  async run(): Promise<void> {
    const archive = await this.call('GET', '/v1/me/export');
    if (!this.flags.output) {
      this.outJson(archive);
      return;
    }
    const { writeFile } = await import('node:fs/promises');
    await writeFile(this.flags.output, `${JSON.stringify(archive, null, 2)}\n`, { mode: 0o600 });
    if (this.jsonMode) this.outJson({ written: this.flags.output });
    else this.out(`Wrote your data to ${this.flags.output}.`);
  }
}
