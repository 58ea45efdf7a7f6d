import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';
import { renderTable } from '../../../output/table.js';

interface RatesBody {
  base_currency: string;
  rates: { currency: string; base_currency: string; rate: string; effective_at: string; created_at: string }[];
}

export default class BillingRatesList extends TollgateCommand<typeof BillingRatesList> {
  static override summary = 'List the exchange rates to the base currency.';

  static override description =
    'The rate in force for each currency, or with --history every rate ever set, newest first per currency. Anyone signed in can read them.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --history --json',
  ];

  static override flags = { history: Flags.boolean({ description: 'Every rate set, not only the ones in force' }) };

  async run(): Promise<void> {
    const body = (await this.call('GET', `/v1/billing/rates${this.flags.history ? '?history=true' : ''}`)) as RatesBody;
    if (this.jsonMode) {
      this.outJson(body);
      return;
    }
    if (body.rates.length === 0) {
      this.note(
        `No exchange rates to ${body.base_currency} yet; set one with \`tollgate billing rates set EUR 0.92\`.`,
      );
      return;
    }
    this.out(
      renderTable(
        body.rates,
        [
          { header: 'currency', value: (rate) => rate.currency },
          { header: 'rate', value: (rate) => rate.rate },
          { header: 'base', value: (rate) => rate.base_currency },
          { header: 'effective', value: (rate) => rate.effective_at },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
