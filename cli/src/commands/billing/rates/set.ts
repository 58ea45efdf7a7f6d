import { Args, Flags } from '@oclif/core';
import { TollgateCommand } from '../../../base-command.js';

interface RateBody {
  currency: string;
  base_currency: string;
  rate: string;
  effective_at: string;
  created_at: string;
}

export default class BillingRatesSet extends TollgateCommand<typeof BillingRatesSet> {
  static override summary = 'Set the exchange rate of a currency to the base currency (operators).';

  static override description =
    "One unit of CURRENCY is worth RATE units of the operator's base currency (TOLLGATE_BASE_CURRENCY, USD by default): `rates set EUR 0.92` means 1 EUR = 0.92 USD. RATE is an exact decimal above 0 with at most 12 decimals. Earlier rates are kept for figures of earlier times. Needs billing:operate (operators).";

  static override examples = [
    '<%= config.bin %> <%= command.id %> EUR 0.92',
    '<%= config.bin %> <%= command.id %> GBP 1.27 --effective-at 2026-07-01T00:00:00Z --json',
  ];

  static override args = {
    currency: Args.string({ description: 'ISO currency code, e.g. EUR', required: true }),
    rate: Args.string({ description: 'Units of the base currency one unit is worth, e.g. 0.92', required: true }),
  };

  static override flags = {
    'effective-at': Flags.string({
      description: 'When the rate takes effect (ISO 8601) [default: now]',
      env: 'TOLLGATE_RATE_EFFECTIVE_AT',
    }),
  };

  async run(): Promise<void> {
    const effectiveAt = this.flags['effective-at'];
    const rate = (await this.call('PUT', `/v1/billing/rates/${encodeURIComponent(this.args.currency)}`, {
      rate: this.args.rate,
      ...(effectiveAt ? { effective_at: effectiveAt } : {}),
    })) as RateBody;
    if (this.jsonMode) this.outJson(rate);
    else this.out(`1 ${rate.currency} = ${rate.rate} ${rate.base_currency} from ${rate.effective_at}.`);
  }
}
