-- Logging in through outside providers: GitHub (OAuth 2), Google and Apple (OpenID Connect), and a
-- team's own OpenID provider (enterprise SSO). See services/src/identity/oauth/.

-- An account at a provider, linked to one Tollgate user. A user may link several.
CREATE TABLE user_identities (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- 'github', 'google', 'apple', or 'sso' (then team_id names the team whose provider it is).
  provider text NOT NULL CHECK (provider IN ('github', 'google', 'apple', 'sso')),
  team_id uuid REFERENCES teams (id) ON DELETE CASCADE,
  -- The provider's stable id of the account (`sub`, or GitHub's numeric user id).
  subject text NOT NULL CHECK (subject <> ''),
  -- The email the provider vouched for when the identity was last used: personal data.
  email text,
  -- The provider's access and refresh tokens, sealed with the master keyring (never plaintext).
  tokens_sealed text,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz,
  CHECK ((provider = 'sso') = (team_id IS NOT NULL))
);
CREATE UNIQUE INDEX user_identities_provider_subject_key
  ON user_identities (provider, coalesce(team_id, '00000000-0000-0000-0000-000000000000'::uuid), subject);
CREATE INDEX user_identities_user_id_idx ON user_identities (user_id);

-- A login in progress: created when the browser is sent to the provider, completed when it comes
-- back with a code, consumed when the client exchanges our one-time login code. Kept 10 minutes.
CREATE TABLE oauth_logins (
  -- SHA-256 of the `state` sent to the provider.
  state_sha256 bytea PRIMARY KEY CHECK (octet_length(state_sha256) = 32),
  provider text NOT NULL CHECK (provider IN ('github', 'google', 'apple', 'sso')),
  team_id uuid REFERENCES teams (id) ON DELETE CASCADE,
  -- Set when a signed-in user is linking another provider to their account.
  link_user_id uuid REFERENCES users (id) ON DELETE CASCADE,
  -- PKCE verifier and OIDC nonce of our request to the provider, sealed.
  provider_checks_sealed text NOT NULL,
  -- Where the browser goes back to (a loopback address of the CLI, or the console) and the client's
  -- own state and PKCE challenge, which bind the one-time code to the client that started the login.
  return_to text NOT NULL,
  client_state text,
  client_code_challenge text NOT NULL CHECK (client_code_challenge ~ '^[A-Za-z0-9_-]{43}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Filled in when the provider answered.
  completed_at timestamptz,
  login_code_sha256 bytea UNIQUE CHECK (octet_length(login_code_sha256) = 32),
  user_id uuid REFERENCES users (id) ON DELETE CASCADE,
  -- Set when the one-time code was exchanged: it never works twice.
  consumed_at timestamptz,
  CHECK (provider <> 'sso' OR team_id IS NOT NULL)
);
CREATE INDEX oauth_logins_expires_at_idx ON oauth_logins (expires_at);

-- A team's enterprise SSO: its own OpenID provider. Configured by an admin of the team.
CREATE TABLE team_sso (
  team_id uuid PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
  issuer text NOT NULL CHECK (issuer ~ '^https?://'),
  client_id text NOT NULL CHECK (client_id <> ''),
  -- Sealed with the master keyring.
  client_secret_sealed text NOT NULL,
  -- Email domains whose people this provider may sign in; empty: any email it vouches for.
  email_domains text[] NOT NULL DEFAULT '{}',
  -- Role given to people who join the team through SSO.
  default_role text NOT NULL DEFAULT 'user' CHECK (default_role IN ('admin', 'developer', 'user')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
