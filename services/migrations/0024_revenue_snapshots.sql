-- Revenue metrics (services/src/billing/revenue-metrics.ts, docs/billing.md "Revenue metrics"): the
-- state of every live subscription at the end of each day, written by the revenue-snapshot job.
-- History cannot be rebuilt from the subscriptions table alone: an upgrade or a downgrade overwrites
-- amount_minor and plan_id, a payment clears past_due_at, and the audit log records plans and states
-- but not amounts; so the figures of a day are read from what was recorded that day.

-- A day the job recorded (also when no subscription was live), and when it last did.
CREATE TABLE revenue_snapshot_days (
  day date PRIMARY KEY,
  taken_at timestamptz NOT NULL
);

-- One row per live (not canceled) subscription and day; a canceled subscription has no row.
CREATE TABLE subscription_daily_snapshots (
  day date NOT NULL REFERENCES revenue_snapshot_days (day) ON DELETE CASCADE,
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'unpaid')),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  billing_interval text NOT NULL CHECK (billing_interval IN ('month', 'year')),
  -- minor units, e.g. cents: the base fee per interval
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  PRIMARY KEY (day, subscription_id)
);
