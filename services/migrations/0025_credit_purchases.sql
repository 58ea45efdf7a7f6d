-- Credit pack purchases (services/src/credits/credit-purchases.ts, docs/billing.md "Credits"): one row
-- per attempt to buy a pack, written before the provider is called so its id can be the provider's
-- idempotency key. Stripe: a Checkout Session in payment mode, paid when payment_intent.succeeded
-- arrives; manual provider: pending until an operator confirms it.
CREATE TABLE credit_purchases (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  pack_id uuid NOT NULL REFERENCES credit_packs (id),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  -- minor units, e.g. cents: the pack's price in `currency` when the purchase started
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'refunded')),
  provider text NOT NULL CHECK (provider IN ('manual', 'stripe')),
  -- Stripe's Checkout Session (cs_...) and, once paid, its payment intent (pi_...); the payment
  -- reference the credit grant is idempotent by (the payment intent, or `manual:<id>`).
  provider_session_id text UNIQUE CHECK (length(provider_session_id) <= 255),
  provider_payment_id text UNIQUE CHECK (length(provider_payment_id) <= 255),
  checkout_url text,
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  confirmed_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  paid_at timestamptz,
  refunded_at timestamptz
);
CREATE INDEX credit_purchases_team ON credit_purchases (team_id, created_at);
