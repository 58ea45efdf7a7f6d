-- Single-use tokens Tollgate mails to people: verifying an email address, resetting a password and
-- confirming a new email address. See services/src/identity/account-tokens.ts.

CREATE TABLE account_tokens (
  -- SHA-256 of the token; the token itself is only ever in the email and in the user's hands.
  token_sha256 bytea PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'change_email')),
  -- The address a change_email token switches to; only change_email tokens have one.
  new_email text CHECK (new_email LIKE '%_@_%'),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Set when the token is used; a used token never works again.
  used_at timestamptz,
  CHECK ((purpose = 'change_email') = (new_email IS NOT NULL)),
  CHECK (expires_at > created_at)
);
CREATE INDEX account_tokens_user_id_purpose_idx ON account_tokens (user_id, purpose);
