import { Flags } from '@oclif/core';
import { CliError, exitCodes } from './cli-error.js';

/** A credit pack as /v1/credit-packs answers it. */
export interface CreditPackDocument {
  id: string;
  slug: string;
  name: string;
  prices: { currency: string; amount: string; amount_minor: string }[];
  grant: { currency: string | null; metric: string | null; amount: string; amount_minor: string; display: string };
  validity_days: number | null;
  archived_at: string | null;
  created_at: string;
}

/** One balance of GET /v1/teams/:team/credits. */
export interface CreditBalanceDocument {
  currency: string | null;
  metric: string | null;
  balance: string;
  balance_minor: string;
  display: string;
  low_balance_below: string | null;
  below_threshold: boolean;
  next_expiry: { at: string; amount: string } | null;
}

export interface CreditEntryDocument {
  id: string;
  kind: string;
  currency: string | null;
  metric: string | null;
  amount: string;
  balance_after: string;
  requested: string | null;
  pack: string | null;
  expires_at: string | null;
  reference: string | null;
  reason: string | null;
  created_at: string;
}

/** "USD" or "calls": what a balance or entry counts. */
export const poolName = (item: { currency: string | null; metric: string | null }) =>
  item.currency ?? item.metric ?? '';

/** --currency or --metric (default: USD), the shared choice of the commands that act on one pool. */
export const poolFlags = {
  currency: Flags.string({
    description: 'Money in this currency (USD, EUR, GBP) [default: USD unless --metric]',
    env: 'TOLLGATE_CREDITS_CURRENCY',
    exclusive: ['metric'],
  }),
  metric: Flags.string({
    description: 'Units of this metric instead of money, e.g. calls',
    env: 'TOLLGATE_CREDITS_METRIC',
    exclusive: ['currency'],
  }),
};

export function poolBody(flags: { currency?: string | undefined; metric?: string | undefined }) {
  if (flags.metric !== undefined) return { metric: flags.metric };
  return { currency: (flags.currency ?? 'USD').toUpperCase() };
}

/** A usage error for a missing choice between two flags. */
export function needOneOf(what: string, hint: string): CliError {
  return new CliError('usage_error', what, { hint, exitCode: exitCodes.usage });
}
