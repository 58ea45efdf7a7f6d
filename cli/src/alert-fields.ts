/** GET/PUT /v1/teams/:team/alerts as the API answers it. */
export interface AlertThresholdsBody {
  team_id: string;
  currency: string;
  quota: { key: string; metric: string; percent: number }[];
  spend: { key: string; amount: string; amount_minor: number; currency: string }[];
}

/** One entry of GET /v1/teams/:team/alerts/history. */
export interface AlertFiringBody {
  id: string;
  key: string;
  kind: 'quota' | 'spend';
  metric: string | null;
  percent: number | null;
  amount: string | null;
  currency: string | null;
  used: number | null;
  included: number | null;
  spend: string | null;
  period_start: string;
  period_end: string;
  events: string[];
  emails_sent: number;
  fired_at: string;
}

/** "80% of calls", "50.00 USD of overage". */
export function describeAlert(alert: {
  kind?: string;
  metric: string | null;
  percent: number | null;
  amount?: string | null;
  currency?: string | null;
}): string {
  return alert.metric !== null && alert.percent !== null
    ? `${alert.percent}% of ${alert.metric}`
    : `${alert.amount} ${alert.currency} of overage`;
}
