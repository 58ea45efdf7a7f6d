-- Team membership (roles and per-member permission changes) and login sessions with their
-- rotating refresh tokens. See services/src/identity/.

CREATE TABLE team_members (
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('admin', 'developer', 'user')),
  -- Team permissions added to or taken from the role for this member (permissions.ts).
  grants text[] NOT NULL DEFAULT '{}',
  revocations text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_id_idx ON team_members (user_id);

-- One login. Its refresh tokens form one family: reusing a rotated token revokes the session.
CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_refreshed_at timestamptz,
  -- Absolute end: refreshing does not extend it.
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text CHECK (revoked_reason IN ('logout', 'logout_everywhere', 'revoked', 'refresh_token_reused')),
  ip inet,
  user_agent text
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
  -- SHA-256 of the token; the token itself is only ever in the client's hands.
  token_sha256 bytea PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
  session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  issued_at timestamptz NOT NULL DEFAULT now(),
  -- Set when exchanged for a new token; presenting it again is reuse.
  rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
