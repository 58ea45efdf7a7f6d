import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';
import { type CreditBalanceDocument, type CreditEntryDocument, needOneOf } from '../../credit-fields.js';
import { teamFlag } from '../../team-flag.js';

export default class CreditsGrant extends TollgateCommand<typeof CreditsGrant> {
  static override summary = 'Grant credits to a team (operators), with a reason.';

  static override description =
    'Money (--amount 25.00 --currency USD) or units of a metric (--units 100000 --metric calls). The reason goes into the ledger and the audit log. With --idempotency-key, running the same grant again changes nothing. Needs the operator permission credits:manage.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --team acme --amount 25 --reason "outage on 3 May"',
    '<%= config.bin %> <%= command.id %> --team acme --units 100000 --metric calls --reason trial --expires-in-days 30',
  ];

  static override flags = {
    team: teamFlag,
    amount: Flags.string({ description: 'Credit in major units of --currency, e.g. 25.00', exclusive: ['units'] }),
    currency: Flags.string({ description: 'Currency of --amount', default: 'USD', env: 'TOLLGATE_CREDITS_CURRENCY' }),
    units: Flags.string({ description: 'Units of --metric', exclusive: ['amount'] }),
    metric: Flags.string({ description: 'Metric of --units', default: 'calls', env: 'TOLLGATE_CREDITS_METRIC' }),
    reason: Flags.string({ description: 'Why: kept in the ledger and the audit log', required: true }),
    'expires-in-days': Flags.integer({ description: 'Days the credit stays usable [default: forever]', min: 1 }),
    reference: Flags.string({ description: 'What it is about, e.g. a ticket or invoice id' }),
    'idempotency-key': Flags.string({ description: 'The same key again grants nothing more' }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    if (flags.amount === undefined && flags.units === undefined) {
      throw needOneOf('say what to grant', 'pass --amount 25 (with --currency), or --units 100000 (with --metric)');
    }
    const team = await this.currentTeam(flags.team);
    const body = {
      ...(flags.amount !== undefined
        ? { currency: flags.currency.toUpperCase(), amount: flags.amount }
        : { metric: flags.metric, units: flags.units }),
      reason: flags.reason,
      ...(flags['expires-in-days'] === undefined ? {} : { expires_in_days: flags['expires-in-days'] }),
      ...(flags.reference === undefined ? {} : { reference: flags.reference }),
      ...(flags['idempotency-key'] === undefined ? {} : { idempotency_key: flags['idempotency-key'] }),
    };
    const answer = (await this.call('POST', `/v1/teams/${encodeURIComponent(team)}/credits/grants`, body)) as {
      entry: CreditEntryDocument;
      balance: CreditBalanceDocument;
    };
    if (this.jsonMode) this.outJson(answer);
    else
      this.out(
        `Granted ${answer.entry.amount} ${answer.entry.currency ?? answer.entry.metric}; the balance is now ${answer.balance.display}.`,
      );
  }
}
