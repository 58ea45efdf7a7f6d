import { TollgateCommand } from '../../base-command.js';
import { renderTable } from '../../output/table.js';
import { teamFlag } from '../../team-flag.js';

/** A purchase as GET /v1/teams/:team/credits/purchases lists it. */
interface PurchaseDocument {
  id: string;
  pack: string;
  currency: string;
  amount: string;
  amount_minor: string;
  status: string;
  provider: string;
  provider_reference: string | null;
  grant: { currency: string | null; metric: string | null; amount: string; amount_minor: string; display: string };
  granted: boolean;
  created_at: string;
  paid_at: string | null;
  refunded_at: string | null;
}

export default class CreditsPurchases extends TollgateCommand<typeof CreditsPurchases> {
  static override summary = "The team's credit pack purchases, newest first.";

  static override description =
    'Every purchase (pending, paid, refunded): when it was made, the pack, what it cost, what it grants, its status and the provider reference (a Stripe payment intent once paid, its Checkout Session before; manual:<id> for one an operator confirmed). Needs billing:read (team admins). With --json: {"purchases": [...]}, every page.';

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --team acme --json',
  ];

  static override flags = { team: teamFlag };

  async run(): Promise<void> {
    const team = await this.currentTeam(this.flags.team);
    const purchases: PurchaseDocument[] = [];
    let before: string | null = null;
    do {
      const query: string = `limit=200${before ? `&before=${encodeURIComponent(before)}` : ''}`;
      const page = (await this.call('GET', `/v1/teams/${encodeURIComponent(team)}/credits/purchases?${query}`)) as {
        purchases: PurchaseDocument[];
        next_before: string | null;
      };
      purchases.push(...page.purchases);
      before = page.next_before;
    } while (before);
    if (this.jsonMode) {
      this.outJson({ purchases });
      return;
    }
    if (purchases.length === 0) {
      this.note('No credit pack purchases yet: tollgate credits buy <pack> buys one.');
      return;
    }
    this.out(
      renderTable(
        purchases,
        [
          { header: 'when', value: (p) => p.created_at },
          { header: 'pack', value: (p) => p.pack },
          { header: 'amount', value: (p) => `${p.amount} ${p.currency}` },
          { header: 'grants', value: (p) => (p.granted ? p.grant.display : `${p.grant.display} (once paid)`) },
          { header: 'status', value: (p) => p.status },
          { header: 'reference', value: (p) => p.provider_reference ?? '-' },
        ],
        { tty: process.stdout.isTTY === true },
      ).trimEnd(),
    );
  }
}
