-- Personal access tokens: long-lived bearer tokens a person creates for scripts and CI, used in
-- place of a session's access token. See services/src/identity/personal-access-tokens.ts.

CREATE TABLE personal_access_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- What the person called it ("ci", "deploy laptop"), to recognise it in the list.
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  -- SHA-256 of the whole token; the token itself is shown once and only ever in the person's hands.
  token_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
  -- The type prefix and the first 6 characters of the secret ('tgpat_Ab3dE9'), shown in lists so a
  -- token found in a file can be matched to its row. 36 bits of 256: no help to a guesser.
  display_prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- NULL: never expires.
  expires_at timestamptz,
  -- Written at most once a minute per token (authenticate.ts), not on every request.
  last_used_at timestamptz,
  last_used_ip inet,
  revoked_at timestamptz,
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX personal_access_tokens_user_id_idx ON personal_access_tokens (user_id, created_at);
