import { TollgateCommand } from '../../base-command.js';
import { CliError } from '../../cli-error.js';

interface Verification {
  ok: boolean;
  entries: number;
  broken_at?: number;
  reason?: string;
}

export default class AuditVerify extends TollgateCommand<typeof AuditVerify> {
  static override summary = 'Check that no audit entry was edited or deleted (operators).';

  static override description =
    'Recomputes the hash chain of the whole audit log. Exits 0 when it is intact, 1 naming the first broken entry otherwise.';

  static override examples = ['<%= config.bin %> <%= command.id %>'];

  async run(): Promise<void> {
    const result = (await this.call('POST', '/v1/audit/verify')) as Verification;
    if (this.jsonMode) {
      this.outJson(result);
      if (!result.ok) this.exit(1);
      return;
    }
    if (result.ok) {
      this.out(`Audit log intact: ${result.entries} entries verified.`);
      return;
    }
    throw new CliError(
      'audit_chain_broken',
      `audit entry ${result.broken_at} is broken: ${result.reason} (${result.entries} entries before it verified)`,
      { hint: 'the log was changed outside Tollgate; compare with a backup from before that entry' },
    );
  }
}
