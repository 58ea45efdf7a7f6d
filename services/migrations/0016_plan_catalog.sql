-- The plan catalog (services/src/plans/plan-catalog.ts, docs/plans.md): a plan is a slug with
-- numbered versions, one row of `plans` each. Changing a plan whose current version has live
-- subscribers adds a version (those subscribers stay where they are); otherwise the current version
-- is changed in place. The gateway still reads only the columns of 0014 (team-policy.ts).

ALTER TABLE plans DROP CONSTRAINT plans_slug_key;
ALTER TABLE plans ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE plans ADD CONSTRAINT plans_slug_version_key UNIQUE (slug, version);

ALTER TABLE plans ADD COLUMN description text NOT NULL DEFAULT '' CHECK (length(description) <= 2000);
-- Days a new subscription is free before its first charge; 0: no trial.
ALTER TABLE plans ADD COLUMN trial_days integer NOT NULL DEFAULT 14 CHECK (trial_days BETWEEN 0 AND 365);
-- Derives the annual price of a currency without an explicit one:
-- 12 x monthly x (1 - p/100), rounded half up once to the minor unit. NULL: no derived annual price.
ALTER TABLE plans ADD COLUMN annual_discount_percent numeric(5, 2) CHECK (
  annual_discount_percent >= 0 AND annual_discount_percent < 100
);
-- Units included per billing period for metrics other than calls (calls: monthly_call_quota, which
-- the gateway enforces): {"bandwidth": 10000000000, "storage": ..., "<custom>": ...}, whole units.
ALTER TABLE plans ADD COLUMN included_quotas jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(included_quotas) = 'object');
-- Prices of units beyond the included ones: {"<metric>": {"<currency>": <meteredPriceSchema>}}.
ALTER TABLE plans ADD COLUMN overage_prices jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(overage_prices) = 'object');
-- Feature flags passed to plugins and upstreams: {"sso": true, "max_seats": 10, "support": "email"}.
ALTER TABLE plans ADD COLUMN entitlements jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(entitlements) = 'object');
-- Set on every version of a slug at once: no new subscriptions; existing ones keep their version.
ALTER TABLE plans ADD COLUMN archived_at timestamptz;
ALTER TABLE plans ADD COLUMN created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL;

-- The base fee of a plan version per currency and billing interval, as the operator gave it. A
-- 'year' row is an explicit annual price; without one the annual price is derived (see above).
CREATE TABLE plan_prices (
  plan_id uuid NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  interval text NOT NULL CHECK (interval IN ('month', 'year')),
  -- minor units, e.g. cents
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  PRIMARY KEY (plan_id, currency, interval)
);
