import { Flags } from '@oclif/core';
import { TollgateCommand } from '../../base-command.js';

export default class BillingClosePeriod extends TollgateCommand<typeof BillingClosePeriod> {
  static override summary = 'Invoice every billing period that has ended.';

  static override description =
    'What the worker does every minute: rates each ended period (base fee, overage per metric, prorations, minus credits), stores the invoice, then pushes it to Stripe when Stripe collects it. Idempotent: a rerun invoices nothing twice. --now closes as of another instant (tests, back-fills). Operators only (billing:operate).';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --now 2026-04-01T00:01:00Z --json',
  ];

  static override flags = {
    now: Flags.string({ description: 'Close as of this ISO 8601 instant [default: now]', env: 'TOLLGATE_BILLING_NOW' }),
  };

  async run(): Promise<void> {
    const body = (await this.call(
      'POST',
      '/v1/billing/close-period',
      this.flags.now ? { now: this.flags.now } : {},
    )) as {
      invoiced: number;
      trials: number;
      pushed: number;
      push_failed: number;
    };
    if (this.jsonMode) this.outJson(body);
    else
      this.out(
        `Invoiced ${body.invoiced} period(s), ${body.trials} trial period(s) free, pushed ${body.pushed} invoice(s) to the provider${body.push_failed > 0 ? `, ${body.push_failed} push(es) failed (retried next run)` : ''}.`,
      );
  }
}
