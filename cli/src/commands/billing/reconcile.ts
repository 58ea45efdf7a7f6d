import { TollgateCommand } from '../../base-command.js';
import { exitCodes } from '../../cli-error.js';
import { renderTable } from '../../output/table.js';

interface ReconcileBody {
  configured: boolean;
  message: string;
  compared: { ours: number; stripe: number };
  differences: {
    object: 'subscription' | 'invoice' | 'credit_note';
    kind: string;
    subscription_id: string | null;
    team_id: string | null;
    stripe_subscription_id: string | null;
    invoice_id: string | null;
    stripe_invoice_id: string | null;
    ours: string | null;
    stripe: string | null;
  }[];
}

export default class BillingReconcile extends TollgateCommand<typeof BillingReconcile> {
  static override summary = "Compare our subscriptions and invoices with Stripe's and list every difference.";

  static override description =
    'Read only: missing on either side, status, amount, period and cancel-at-period-end mismatches; credit notes of pushed invoices that Stripe does not hold. Exits 0 when both sides agree (or without Stripe settings, when there is nothing to reconcile against), 1 when there are differences. Operators only.';

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json'];

  async run(): Promise<void> {
    const body = (await this.call('GET', '/v1/billing/reconcile')) as ReconcileBody;
    if (this.jsonMode) {
      this.outJson(body);
    } else if (body.differences.length > 0) {
      this.out(
        renderTable(
          body.differences,
          [
            { header: 'object', value: (d) => d.object },
            { header: 'kind', value: (d) => d.kind },
            {
              header: 'ours id',
              value: (d) => (d.object === 'subscription' ? d.subscription_id : d.invoice_id) ?? '-',
            },
            {
              header: 'stripe id',
              value: (d) => (d.object === 'subscription' ? d.stripe_subscription_id : d.stripe_invoice_id) ?? '-',
            },
            { header: 'ours', value: (d) => d.ours ?? '-' },
            { header: "stripe's", value: (d) => d.stripe ?? '-' },
          ],
          { tty: process.stdout.isTTY === true },
        ).trimEnd(),
      );
      this.note(`${body.message}.`);
    } else {
      this.note(`${body.message}.`);
    }
    if (body.differences.length > 0) this.exit(exitCodes.error);
  }
}
