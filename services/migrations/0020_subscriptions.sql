-- Subscriptions (services/src/billing/subscriptions.ts, docs/billing.md "Subscriptions"): what a
-- subscription needs beyond 0001, the payment provider's customers, Checkout sessions waiting for a
-- customer, and the prorations of upgrades until the period close invoices them.

-- Who collects the money: 'manual' (no provider keys; an operator marks invoices paid, and every free
-- plan) or 'stripe'. The provider's id of the subscription, once it has one.
ALTER TABLE subscriptions ADD COLUMN provider text NOT NULL DEFAULT 'manual' CHECK (provider IN ('manual', 'stripe'));
ALTER TABLE subscriptions ADD COLUMN provider_subscription_id text CHECK (length(provider_subscription_id) <= 255);
CREATE UNIQUE INDEX subscriptions_provider_subscription ON subscriptions (provider, provider_subscription_id)
  WHERE provider_subscription_id IS NOT NULL;
-- The base fee per interval the subscription pays, in minor units of its currency (the plan
-- version's price when it started or last changed plan).
ALTER TABLE subscriptions ADD COLUMN amount_minor bigint NOT NULL DEFAULT 0 CHECK (amount_minor >= 0);
-- A downgrade waits for the period end: the plan version it moves to, and when.
ALTER TABLE subscriptions ADD COLUMN pending_plan_id uuid REFERENCES plans (id);
ALTER TABLE subscriptions ADD COLUMN pending_amount_minor bigint CHECK (pending_amount_minor >= 0);
ALTER TABLE subscriptions ADD COLUMN pending_change_at timestamptz;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_pending_change
  CHECK ((pending_plan_id IS NULL) = (pending_change_at IS NULL) AND (pending_plan_id IS NULL) = (pending_amount_minor IS NULL));
-- past_due since when, and until when the gateway still serves (TOLLGATE_BILLING_GRACE_DAYS later).
ALTER TABLE subscriptions ADD COLUMN past_due_at timestamptz;
ALTER TABLE subscriptions ADD COLUMN grace_ends_at timestamptz;
-- Unix seconds of the newest provider event applied to the row: an older one changes nothing.
ALTER TABLE subscriptions ADD COLUMN provider_synced_at bigint;
CREATE INDEX subscriptions_lifecycle ON subscriptions (current_period_end) WHERE status <> 'canceled';

-- The currency of everything a team buys, fixed by its first subscription.
ALTER TABLE teams ADD COLUMN billing_currency char(3) CHECK (billing_currency ~ '^[A-Z]{3}$');

-- A team's customer at a payment provider (Stripe's cus_...), created once per team and provider.
CREATE TABLE billing_customers (
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  provider text NOT NULL CHECK (provider IN ('stripe')),
  customer_id text NOT NULL CHECK (length(customer_id) BETWEEN 1 AND 255),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, provider),
  UNIQUE (provider, customer_id)
);

-- A paid subscription started at a provider's hosted page: it becomes a subscription when the
-- provider says the customer completed it (Stripe: checkout.session.completed).
CREATE TABLE subscription_checkouts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  plan_id uuid NOT NULL REFERENCES plans (id),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  billing_interval text NOT NULL CHECK (billing_interval IN ('month', 'year')),
  -- minor units, e.g. cents
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  provider text NOT NULL CHECK (provider IN ('stripe')),
  provider_session_id text NOT NULL UNIQUE CHECK (length(provider_session_id) <= 255),
  url text NOT NULL,
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed', 'expired')),
  subscription_id uuid REFERENCES subscriptions (id),
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
CREATE INDEX subscription_checkouts_team ON subscription_checkouts (team_id, created_at);

-- What an upgrade in the middle of a period is worth: the unused part of the old fee credited, the
-- rest of the period at the new fee charged (pricing.ts prorateMinor). `collected_by` 'tollgate':
-- the period close puts it on the next invoice (and sets `invoiced_at`); 'stripe': Stripe prorated
-- and bills it itself, the row is our record of it.
CREATE TABLE subscription_prorations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  from_plan_id uuid NOT NULL REFERENCES plans (id),
  to_plan_id uuid NOT NULL REFERENCES plans (id),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  -- minor units, e.g. cents
  credit_minor bigint NOT NULL CHECK (credit_minor >= 0),
  charge_minor bigint NOT NULL CHECK (charge_minor >= 0),
  net_minor bigint NOT NULL CHECK (net_minor = charge_minor - credit_minor),
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  changed_at timestamptz NOT NULL,
  collected_by text NOT NULL CHECK (collected_by IN ('tollgate', 'stripe')),
  invoiced_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_prorations_subscription ON subscription_prorations (subscription_id, changed_at);
