import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type CreditBalanceDocument, type CreditEntryDocument, poolName } from '../../credit-fields.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

export default class CreditsBalance extends TollgateCommand<typeof CreditsBalance> {
  static override summary = "The team's prepaid credits: balance per currency or metric, and the latest entries.";

  static override description =
    'Balances count only usable credit (expired credit is never used). --entries N shows the newest N ledger entries (grants, consumptions, expiries, refund reversals). Needs billing:read (team admins). With --json: {"balances": [...], "entries": [...], "next_before"}.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --entries 20 --json',
  ];

  static override flags = {
    team: teamFlag,
    entries: Flags.integer({
      description: 'How many of the newest ledger entries to show (0 to 200)',
      default: 10,
      min: 0,
      max: 200,
      env: 'TOLLGATE_CREDITS_ENTRIES',
    }),
  };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const limit = Math.max(1, this.flags.entries);
    const answer = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/credits?limit=${limit}`)) as {
      balances: CreditBalanceDocument[];
      entries: CreditEntryDocument[];
      next_before: string | null;
    };
    if (this.flags.entries === 0) answer.entries = [];
    if (this.jsonMode) {
      this.outJson(answer);
      return;
    }
    const tty = process.stdout.isTTY === true;
    if (answer.balances.length === 0) {
      this.note('No credits yet.');
      return;
    }
    this.out(
      renderTable(
        answer.balances,
        [
          { header: 'pool', value: (b) => poolName(b) },
          { header: 'balance', value: (b) => b.balance },
          { header: 'alert below', value: (b) => b.low_balance_below ?? '' },
          {
            header: 'next expiry',
            value: (b) => (b.next_expiry ? `${b.next_expiry.amount} on ${b.next_expiry.at}` : ''),
          },
        ],
        { tty },
      ).trimEnd(),
    );
    if (answer.entries.length > 0) {
      this.out('');
      this.out(
        renderTable(
          answer.entries,
          [
            { header: 'when', value: (e) => e.created_at },
            { header: 'kind', value: (e) => e.kind },
            { header: 'pool', value: (e) => poolName(e) },
            { header: 'amount', value: (e) => e.amount },
            { header: 'balance', value: (e) => e.balance_after },
            { header: 'about', value: (e) => e.reason ?? e.reference ?? '' },
          ],
          { tty },
        ).trimEnd(),
      );
    }
  }
}
