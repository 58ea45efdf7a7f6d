import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class AdminRotateMasterKey extends TollgateCommand<typeof AdminRotateMasterKey> {
  static override summary = 'Re-encrypt every secret at rest under the current master key (operators).';

  static override description = `Rotating the master key:
  1. tollgate admin rotate-master-key --new-key   prints a fresh key
  2. restart every Tollgate process with TOLLGATE_MASTER_KEY=<new key> and
     TOLLGATE_MASTER_KEY_PREVIOUS=<old key>
  3. tollgate admin rotate-master-key             re-encrypts what is still under the old key
  4. when it reports 0 re-encrypted, remove TOLLGATE_MASTER_KEY_PREVIOUS and restart.
Access tokens are signed with a key derived from the master key: after step 2 everyone's CLI refreshes its session once.`;

  static override examples = ['<%= config.bin %> <%= command.id %> --new-key', '<%= config.bin %> <%= command.id %>'];

  static override flags = {
    'new-key': Flags.boolean({ description: 'Only print a fresh random key (32 bytes, base64) and exit' }),
  };

  async run(): Promise<void> {
    if (this.flags['new-key']) {
      const { randomBytes } = await import('node:crypto');
      const key = randomBytes(32).toString('base64');
      if (this.jsonMode) this.outJson({ key });
      else this.out(key);
      return;
    }
    const report = (await this.call('POST', '/v1/admin/secrets/reencrypt')) as {
      examined: number;
      reencrypted: number;
      current_key_id: string;
    };
    if (this.jsonMode) {
      this.outJson(report);
      return;
    }
    this.out(`Re-encrypted ${report.reencrypted} of ${report.examined} secret(s) under key ${report.current_key_id}.`);
    if (report.reencrypted === 0) this.note('Nothing is left under an older key: TOLLGATE_MASTER_KEY_PREVIOUS can go.');
  }
}
