import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type CreditBalanceDocument, needOneOf, poolBody, poolFlags, poolName } from '../../credit-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class CreditsAlert extends TollgateCommand<typeof CreditsAlert> {
  static override summary = "Set the team's low-balance alert: when credit falls below an amount.";

  static override description =
    'The alert fires once when a consumption or an expiry takes the balance below the amount, and again only after the balance has been back at or above it. --off removes it. Money by default (--currency, USD), or units with --metric. Needs billing:write (team admins).';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --below 10.00',
    '<%= config.bin %> <%= command.id %> --below 50000 --metric calls --team acme',
    '<%= config.bin %> <%= command.id %> --off --currency EUR',
  ];

  static override flags = {
    team: teamFlag,
    ...poolFlags,
    below: Flags.string({
      description: 'Alert below this amount (major units) or number of units',
      exclusive: ['off'],
    }),
    off: Flags.boolean({ description: 'Remove the alert', exclusive: ['below'] }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    if (flags.below === undefined && !flags.off) throw needOneOf('say when to alert', 'pass --below 10.00, or --off');
    const team = await this.currentTeam(flags.team);
    const balance = (await this.call('PUT', `/v1/teams/${encodeURIComponent(team)}/credits/low-balance`, {
      ...poolBody(flags),
      below: flags.off ? null : flags.below,
    })) as CreditBalanceDocument;
    if (this.jsonMode) this.outJson(balance);
    else if (balance.low_balance_below === null) this.out(`No low-balance alert for ${poolName(balance)} any more.`);
    else
      this.out(
        `Alert when ${poolName(balance)} credit falls below ${balance.low_balance_below} (now ${balance.display}${balance.below_threshold ? ', already below' : ''}).`,
      );
  }
}
