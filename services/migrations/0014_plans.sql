-- Plans as the gateway needs them: rate limits and the monthly call quota. The billing work extends
-- this table (prices, currencies, trials, versions); the gateway only reads the columns below.
-- See services/src/plans/team-policy.ts.

CREATE TABLE plans (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- Per-team rate limits; NULL means no limit for that window.
  rate_limit_per_second integer CHECK (rate_limit_per_second >= 0),
  rate_limit_per_minute integer CHECK (rate_limit_per_minute >= 0),
  rate_limit_per_hour integer DEFAULT 1000 CHECK (rate_limit_per_hour >= 0),
  rate_limit_per_day integer CHECK (rate_limit_per_day >= 0),
  -- Calls included per billing period; NULL means unlimited.
  monthly_call_quota bigint CHECK (monthly_call_quota >= 0),
  -- Beyond the quota: serve and bill as overage (true), or answer 429 quota_exhausted (false).
  overage_allowed boolean NOT NULL DEFAULT false,
  -- The plan of teams without a subscription; at most one.
  is_default boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_one_default ON plans (is_default) WHERE is_default;

INSERT INTO plans (slug, name, rate_limit_per_second, rate_limit_per_hour, monthly_call_quota, overage_allowed, is_default)
VALUES ('free', 'Free', 10, 1000, 10000, false, true);

ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_plan_id_fkey FOREIGN KEY (plan_id) REFERENCES plans (id);

-- Quotas run in calendar billing periods from this instant (UTC); the billing work sets it from the
-- first subscription. `payment_required` makes the gateway answer 402 (set by the billing work when
-- a subscription is unpaid beyond its grace period).
ALTER TABLE teams ADD COLUMN billing_anchor_at timestamptz;
UPDATE teams SET billing_anchor_at = created_at;
ALTER TABLE teams ALTER COLUMN billing_anchor_at SET NOT NULL;
ALTER TABLE teams ALTER COLUMN billing_anchor_at SET DEFAULT now();
ALTER TABLE teams ADD COLUMN payment_required boolean NOT NULL DEFAULT false;
