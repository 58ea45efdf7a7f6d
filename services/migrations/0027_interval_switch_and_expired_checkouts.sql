-- Switching a subscription between monthly and annual billing, and Checkouts the customer abandoned
-- (services/src/billing/subscriptions.ts, docs/billing.md "Monthly and annual", docs/stripe.md).

-- A change waiting for the period end may also change the billing interval (annual → monthly takes
-- effect when the paid year ends): the interval the subscription moves to then; NULL keeps its own.
-- It only exists with a pending plan (the same plan version for an interval-only switch).
ALTER TABLE subscriptions ADD COLUMN pending_interval text CHECK (pending_interval IN ('month', 'year'));
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_pending_interval
  CHECK (pending_interval IS NULL OR pending_plan_id IS NOT NULL);

-- When the provider's hosted page stops taking the payment (Stripe: the session's `expires_at`, 24
-- hours by default): an open Checkout past it is not offered again, and `subscribe` starts a new one.
ALTER TABLE subscription_checkouts ADD COLUMN expires_at timestamptz;
-- When an open Checkout was marked expired (Stripe: checkout.session.expired).
ALTER TABLE subscription_checkouts ADD COLUMN expired_at timestamptz;
CREATE INDEX subscription_checkouts_open ON subscription_checkouts (team_id) WHERE status = 'open';

-- A credit pack Checkout the customer abandoned ends `expired` (Stripe: checkout.session.expired);
-- nothing was paid, nothing is granted.
ALTER TABLE credit_purchases DROP CONSTRAINT credit_purchases_status_check;
ALTER TABLE credit_purchases ADD CONSTRAINT credit_purchases_status_check
  CHECK (status IN ('pending', 'paid', 'refunded', 'expired'));
ALTER TABLE credit_purchases ADD COLUMN expired_at timestamptz;

-- Whoever clears a pending change (an upgrade at once, a cancel, the renewal that applies it) clears
-- its interval with it, so a stale interval can never ride along with a later pending plan.
CREATE FUNCTION clear_pending_interval() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.pending_plan_id IS NULL THEN
    NEW.pending_interval := NULL;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER subscriptions_pending_interval_cleared BEFORE UPDATE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION clear_pending_interval();
