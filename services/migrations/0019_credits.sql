-- Prepaid credits (services/src/credits/, docs/billing.md "Credits"): packs operators sell, and a
-- ledger per team. A "pool" is what an amount counts: a currency (USD, EUR, GBP: minor units, e.g.
-- cents) or a metric (calls, bandwidth, a custom one: whole units). Currencies are upper case and
-- metrics lower case, so one text column names either without ambiguity.

CREATE TABLE credit_packs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- What a purchase grants: `grant_amount` of `grant_pool` (minor units of a currency, or units of a metric).
  grant_pool text NOT NULL CHECK (grant_pool ~ '^([A-Z]{3}|[a-z][a-z0-9_]{0,39})$'),
  grant_amount bigint NOT NULL CHECK (grant_amount > 0),
  -- Days a purchase stays usable; NULL: it never expires.
  validity_days integer CHECK (validity_days BETWEEN 1 AND 3650),
  archived_at timestamptz,
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- What a pack costs, per currency it is sold in.
CREATE TABLE credit_pack_prices (
  pack_id uuid NOT NULL REFERENCES credit_packs (id) ON DELETE CASCADE,
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  -- minor units, e.g. cents
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  PRIMARY KEY (pack_id, currency)
);

-- A team's balance of one pool, changed only in the transaction that appends the entry explaining
-- the change, with the row locked (SELECT ... FOR UPDATE): consumers of one pool take turns, and the
-- CHECK makes a balance below zero impossible even for a bug.
CREATE TABLE credit_balances (
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  pool text NOT NULL CHECK (pool ~ '^([A-Z]{3}|[a-z][a-z0-9_]{0,39})$'),
  balance bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
  -- The team's low-balance threshold (same unit as balance); NULL: none. `below_threshold` is set
  -- when a debit takes the balance below it (one alert per crossing) and cleared when it is back.
  low_balance_threshold bigint CHECK (low_balance_threshold > 0),
  below_threshold boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, pool)
);

-- The ledger: append-only. `delta` is signed (+ grant, - consumption, expiry, refund reversal), and
-- `balance_after` is the pool's balance once the entry is applied, so the entries of a pool replay
-- to its balance. The idempotency key is unique per team: a retried grant or consumption finds its
-- first entry and changes nothing.
CREATE TABLE credit_entries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Orders the entries (paging, replay); created_at can tie within a transaction.
  seq bigserial NOT NULL UNIQUE,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  pool text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('grant', 'consumption', 'expiry', 'refund_reversal')),
  delta bigint NOT NULL CHECK ((kind = 'grant' AND delta > 0) OR (kind <> 'grant' AND delta <= 0)),
  balance_after bigint NOT NULL CHECK (balance_after >= 0),
  -- A consumption: what was asked for (delta is what was taken, never more than the balance).
  requested bigint CHECK (requested >= 0),
  -- A grant: where it came from, and when what is left of it expires (NULL: never).
  source text CHECK (source IN ('pack', 'operator')),
  pack_id uuid REFERENCES credit_packs (id) ON DELETE SET NULL,
  expires_at timestamptz,
  -- A debit: the grants it took from, oldest-expiring first: [{"grant_entry_id", "amount"}].
  allocations jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allocations) = 'array'),
  -- What the entry is about: an invoice, a payment intent, a grant entry id.
  reference text CHECK (length(reference) <= 200),
  reason text CHECK (length(reason) <= 500),
  idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, idempotency_key)
);
CREATE INDEX credit_entries_team_seq_idx ON credit_entries (team_id, seq DESC);

-- What is left of each grant, debited oldest-expiring first. The one mutable companion of the
-- append-only ledger (its row is the grant entry's), changed under the balance row's lock.
CREATE TABLE credit_grant_remainders (
  grant_entry_id uuid PRIMARY KEY REFERENCES credit_entries (id) ON DELETE CASCADE,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  pool text NOT NULL,
  remaining bigint NOT NULL CHECK (remaining >= 0),
  expires_at timestamptz
);
CREATE INDEX credit_grant_remainders_open_idx ON credit_grant_remainders (team_id, pool, expires_at)
  WHERE remaining > 0;
CREATE INDEX credit_grant_remainders_expiry_idx ON credit_grant_remainders (expires_at)
  WHERE remaining > 0 AND expires_at IS NOT NULL;

-- Low-balance crossings, one row each, for the usage-alert delivery to send (email, webhook) and mark.
CREATE TABLE credit_low_balance_alerts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  pool text NOT NULL,
  threshold bigint NOT NULL,
  balance bigint NOT NULL,
  entry_id uuid NOT NULL REFERENCES credit_entries (id) ON DELETE CASCADE,
  crossed_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz
);
CREATE INDEX credit_low_balance_alerts_undelivered_idx ON credit_low_balance_alerts (crossed_at)
  WHERE delivered_at IS NULL;
