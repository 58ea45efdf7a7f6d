-- Core tables of the product plan: who uses Tollgate (users, teams), what they pay for
-- (subscriptions), how their services call the gateway (api_keys) and the files Tollgate keeps for
-- them (assets). Later migrations extend these tables; this file never changes once released.

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL CHECK (email LIKE '%_@_%'),
  name text,
  -- argon2id/scrypt encoded hash; NULL for accounts that only sign in through a provider.
  password_hash text,
  -- Installation-wide role: operators are 'admin'; team roles live with team membership.
  installation_role text NOT NULL DEFAULT 'member' CHECK (installation_role IN ('admin', 'member')),
  email_verified_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE deleted_at IS NULL;

-- A customer account. Subscriptions, keys and invoices belong to a team, not to a person.
CREATE TABLE teams (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
  -- The plan version subscribed to; the plans table and its foreign key arrive with plans.
  plan_id uuid NOT NULL,
  status text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'unpaid')),
  -- ISO 4217, fixed at the team's first subscription.
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  billing_interval text NOT NULL CHECK (billing_interval IN ('month', 'year')),
  current_period_start timestamptz NOT NULL,
  current_period_end timestamptz NOT NULL,
  trial_ends_at timestamptz,
  cancel_at_period_end boolean NOT NULL DEFAULT false,
  canceled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (current_period_end > current_period_start)
);
-- At most one subscription per team that is not canceled.
CREATE UNIQUE INDEX subscriptions_one_live_per_team ON subscriptions (team_id) WHERE status <> 'canceled';

CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  owner_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  name text,
  mode text NOT NULL CHECK (mode IN ('live', 'test')),
  -- The public <id> of tg_<mode>_<id>_<secret>; the secret itself is never stored.
  lookup_id text NOT NULL UNIQUE CHECK (lookup_id ~ '^[A-Za-z0-9]{8,32}$'),
  -- SHA-256 of the secret, compared in constant time.
  secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
  scopes text[] NOT NULL DEFAULT '{}',
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_team_id_idx ON api_keys (team_id);

-- Metadata of blobs (plugin tarballs, exports, invoice PDFs); the bytes live in the blob store.
CREATE TABLE assets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid REFERENCES teams (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('plugin_tarball', 'export', 'invoice_pdf')),
  storage_key text NOT NULL UNIQUE,
  content_type text NOT NULL,
  byte_size bigint NOT NULL CHECK (byte_size >= 0),
  sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_team_id_idx ON assets (team_id);
