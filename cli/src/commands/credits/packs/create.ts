import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';
import { CliError, exitCodes } from '../../../cli-error.js';
import type { CreditPackDocument } from '../../../credit-fields.js';
import { needOneOf } from '../../../credit-fields.js';

export default class CreditsPacksCreate extends TollgateCommand<typeof CreditsPacksCreate> {
  static override summary = 'Create a credit pack (operators).';

  static override description =
    'A pack is what teams buy to prepay: a price per currency (--price USD=49.00, once per currency) and what it grants, either credit (--amount 50 --currency USD) or units of a metric (--units 1000000 --metric calls). --validity-days limits how long a purchase stays usable. Amounts are exact: no more decimals than the currency has. Needs the operator permission credits:manage.';

  static override examples = [
    '<%= config.bin %> <%= command.id %> --slug million-calls --name "1,000,000 calls" --price USD=49 --price EUR=45 --units 1000000 --metric calls --validity-days 365',
    '<%= config.bin %> <%= command.id %> --slug usd-50 --name "$50 of credit" --price USD=45 --amount 50 --currency USD',
  ];

  static override flags = {
    slug: Flags.string({ description: 'The pack slug (lower-case letters, digits, dashes)', required: true }),
    name: Flags.string({ description: 'Name shown to teams', required: true }),
    price: Flags.string({
      description: 'CURRENCY=AMOUNT in major units, e.g. USD=49.00; once per currency',
      multiple: true,
      required: true,
    }),
    amount: Flags.string({ description: 'Credit granted, in major units of --currency', exclusive: ['units'] }),
    currency: Flags.string({ description: 'Currency of --amount', default: 'USD' }),
    units: Flags.string({ description: 'Units of --metric granted', exclusive: ['amount'] }),
    metric: Flags.string({ description: 'Metric of --units', default: 'calls' }),
    'validity-days': Flags.integer({ description: 'Days a purchase stays usable [default: forever]', min: 1 }),
  };

  async run(): Promise<void> {
    const { flags } = this;
    if (flags.amount === undefined && flags.units === undefined) {
      throw needOneOf('say what the pack grants', 'pass --amount 50 --currency USD, or --units 1000000 --metric calls');
    }
    const prices = flags.price.map((text) => {
      const match = /^([A-Za-z]{3})=(.+)$/.exec(text);
      if (!match?.[1] || match[2] === undefined) {
        throw new CliError('usage_error', `--price ${text}: write CURRENCY=AMOUNT, e.g. USD=49.00`, {
          exitCode: exitCodes.usage,
        });
      }
      return { currency: match[1].toUpperCase(), amount: match[2] };
    });
    const body = {
      slug: flags.slug,
      name: flags.name,
      prices,
      grant:
        flags.amount !== undefined
          ? { currency: flags.currency.toUpperCase(), amount: flags.amount }
          : { metric: flags.metric, units: flags.units },
      ...(flags['validity-days'] === undefined ? {} : { validity_days: flags['validity-days'] }),
    };
    const pack = (await this.call('POST', '/v1/credit-packs', body)) as CreditPackDocument;
    if (this.jsonMode) this.outJson(pack);
    else this.out(`Created the credit pack ${pack.name} (${pack.slug}): ${pack.grant.display}.`);
  }
}
