-- Two-factor authentication: an authenticator app (TOTP), single-use recovery codes, and codes sent
-- by email; and the short-lived challenges that sit between the password and the second factor at
-- login. See services/src/identity/two-factor-store.ts.

-- One row per user who has started or finished setting up a second factor; no row means none.
CREATE TABLE user_two_factor (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  -- The TOTP seed sealed with the master keyring ('tgs1.' ...), context 'totp_seed:user:<uuid>'.
  -- Set with totp_confirmed_at NULL while the user has not yet typed a first code from the app.
  totp_secret_sealed text CHECK (totp_secret_sealed IS NULL OR totp_secret_sealed LIKE 'tgs1.%'),
  totp_confirmed_at timestamptz,
  -- The last TOTP time step (unix seconds / 30) accepted: codes of that step and earlier are refused,
  -- so each code works once (RFC 6238 section 5.2).
  totp_last_step integer CHECK (totp_last_step >= 0),
  -- SHA-256 (hex) of each unused recovery code; a used code's hash is removed.
  recovery_code_hashes text[] NOT NULL DEFAULT '{}',
  email_codes_enabled boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (totp_confirmed_at IS NULL OR totp_secret_sealed IS NOT NULL)
);

-- Issued when the password of an account with a second factor was right: the client gets a random
-- `tgc_...` token (only its SHA-256 is stored here) and trades it, with a code, for a session.
CREATE TABLE two_factor_challenges (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  challenge_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(challenge_sha256) = 32),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Five minutes after created_at.
  expires_at timestamptz NOT NULL,
  -- Set when a code opened a session: a challenge works once.
  used_at timestamptz,
  -- Wrong codes so far; at five the challenge is dead.
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- SHA-256 (hex) of the code last sent by email for this challenge, if any.
  email_code_hash text,
  -- Emails sent for this challenge, to bound how many one password can trigger.
  email_codes_sent integer NOT NULL DEFAULT 0 CHECK (email_codes_sent >= 0)
);
CREATE INDEX two_factor_challenges_user_id_idx ON two_factor_challenges (user_id);

-- One row per wrong second-factor code, at login or when confirming a change while signed in. Too
-- many in a few minutes and the account takes no more codes for a while: five per challenge alone
-- would let someone who knows the password guess on through new challenges. Rows older than the
-- window are deleted as new ones arrive.
CREATE TABLE two_factor_failures (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX two_factor_failures_user_id_idx ON two_factor_failures (user_id, failed_at);
