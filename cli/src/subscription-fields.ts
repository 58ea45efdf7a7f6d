/** A subscription as GET /v1/teams/:team/subscription answers it. */
export interface SubscriptionDocument {
  id: string;
  plan: string;
  plan_version: number;
  status: string;
  currency: string;
  interval: 'month' | 'year';
  /** minor units, e.g. cents */
  amount_minor: number;
  current_period_start: string;
  current_period_end: string;
  trial_ends_at: string | null;
  cancel_at_period_end: boolean;
  canceled_at: string | null;
  provider: string;
  pending_change: {
    plan: string;
    plan_version: number;
    amount_minor: number;
    /** The billing interval from then on (absent from older servers). */
    interval?: 'month' | 'year';
    at: string;
  } | null;
  past_due_at: string | null;
  grace_ends_at: string | null;
  /** A Checkout the team started and can still pay (GET only; expired ones are not listed). */
  open_checkout?: {
    checkout_url: string;
    checkout_id: string;
    plan: string;
    currency: string;
    interval: 'month' | 'year';
    expires_at: string | null;
  } | null;
}

/** The answer of subscribe or change when the customer pays at the provider's page first. */
export interface CheckoutDocument {
  checkout_url: string;
  checkout_id: string;
}

/** Minor units as major ones with two places (USD, EUR and GBP all have two). */
export const money = (minor: number, currency: string) => `${(minor / 100).toFixed(2)} ${currency}`;

export function subscriptionFields(subscription: SubscriptionDocument): [string, string][] {
  const fields: [string, string][] = [
    ['plan', `${subscription.plan} (version ${subscription.plan_version})`],
    ['status', subscription.status],
    ['price', `${money(subscription.amount_minor, subscription.currency)} per ${subscription.interval}`],
    ['period', `${subscription.current_period_start} to ${subscription.current_period_end}`],
    ['provider', subscription.provider],
  ];
  if (subscription.trial_ends_at) fields.push(['trial ends', subscription.trial_ends_at]);
  if (subscription.cancel_at_period_end) fields.push(['cancels at', subscription.current_period_end]);
  if (subscription.canceled_at) fields.push(['canceled at', subscription.canceled_at]);
  const pending = subscription.pending_change;
  if (pending) {
    const interval = pending.interval ?? subscription.interval;
    const price = `${money(pending.amount_minor, subscription.currency)} per ${interval}`;
    fields.push(
      interval === subscription.interval
        ? ['downgrade', `to ${pending.plan} (${price}) at ${pending.at}`]
        : [
            'pending change',
            `to ${pending.plan}, billed ${interval === 'year' ? 'annually' : 'monthly'} (${price}) at ${pending.at}`,
          ],
    );
  }
  const checkout = subscription.open_checkout;
  if (checkout) {
    fields.push([
      'open checkout',
      `${checkout.plan} per ${checkout.interval} in ${checkout.currency}: ${checkout.checkout_url}${checkout.expires_at ? ` (until ${checkout.expires_at})` : ''}`,
    ]);
  }
  if (subscription.grace_ends_at) fields.push(['served until', subscription.grace_ends_at]);
  return fields;
}
