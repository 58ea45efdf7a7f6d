-- Team ownership and invitations. Members and their roles are in team_members (0004).

ALTER TABLE teams ADD COLUMN owner_user_id uuid REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE team_invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  email text NOT NULL CHECK (email LIKE '%_@_%'),
  role text NOT NULL CHECK (role IN ('admin', 'developer', 'user')),
  -- SHA-256 of the single-use token sent by email; the token itself is never stored.
  token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
  invited_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  accepted_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  revoked_at timestamptz
);
CREATE INDEX team_invitations_team_id_idx ON team_invitations (team_id);
-- One open invitation per address and team: inviting again replaces it.
CREATE UNIQUE INDEX team_invitations_open_key ON team_invitations (team_id, lower(email))
  WHERE accepted_at IS NULL AND revoked_at IS NULL;
