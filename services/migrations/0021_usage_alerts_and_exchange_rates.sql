-- Usage alerts (services/src/alerts, docs/alerts.md) and the operator's exchange-rate table
-- (services/src/billing/exchange-rates.ts, docs/billing.md "Exchange rates").

-- A team's thresholds: a percentage of a plan quota per metric, or an amount of overage spend in the
-- team's currency. `threshold_key` names the threshold stably ('quota:calls:80', 'spend:USD:5000'),
-- so replacing the set with the same thresholds does not make them fire again in the same period.
CREATE TABLE usage_alert_thresholds (
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  threshold_key text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('quota', 'spend')),
  -- quota: the metric and a whole percentage of its included units (1 to 100).
  metric text CHECK (metric ~ '^[a-z][a-z0-9_]{0,62}$'),
  percent integer CHECK (percent BETWEEN 1 AND 100),
  -- spend: minor units, e.g. cents, in `currency`.
  amount_minor bigint CHECK (amount_minor > 0),
  currency char(3) CHECK (currency ~ '^[A-Z]{3}$'),
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, threshold_key),
  CHECK (
    (kind = 'quota' AND metric IS NOT NULL AND percent IS NOT NULL AND amount_minor IS NULL AND currency IS NULL)
    OR (kind = 'spend' AND metric IS NULL AND percent IS NULL AND amount_minor IS NOT NULL AND currency IS NOT NULL)
  )
);

-- Each threshold fires at most once per billing period: the UNIQUE key is the guarantee, so two
-- workers (or a rerun) evaluating at once fire once. Kept after the threshold is cleared: history.
CREATE TABLE usage_alert_firings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  threshold_key text NOT NULL,
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  kind text NOT NULL CHECK (kind IN ('quota', 'spend')),
  metric text,
  percent integer,
  amount_minor bigint,
  currency char(3),
  -- What was observed when it fired: units used and included (quota), or overage so far (spend).
  used bigint,
  included bigint,
  spend_minor bigint,
  -- Webhook events enqueued with the firing: quota.threshold_reached, and quota.exhausted at 100% of
  -- a capped quota.
  event_types text[] NOT NULL,
  -- Emails go out after the firing commits (at most once); how many were sent, and the last error.
  emails_sent integer NOT NULL DEFAULT 0,
  email_error text,
  fired_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, threshold_key, period_start)
);
CREATE INDEX usage_alert_firings_team_idx ON usage_alert_firings (team_id, fired_at DESC);

-- Exchange rates for reporting: 1 unit of `currency` is worth `rate` units of `base_currency` (the
-- operator's TOLLGATE_BASE_CURRENCY when set). Never updated: a new rate is a new row, and the rate of
-- an instant is the newest row effective at or before it.
CREATE TABLE exchange_rates (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  base_currency char(3) NOT NULL CHECK (base_currency ~ '^[A-Z]{3}$' AND base_currency <> currency),
  -- Exact, as the operator typed it (numeric without a scale keeps "0.92" as 0.92).
  rate numeric NOT NULL CHECK (rate > 0),
  effective_at timestamptz NOT NULL,
  set_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exchange_rates_lookup_idx ON exchange_rates (base_currency, currency, effective_at DESC, created_at DESC);
