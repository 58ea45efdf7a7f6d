-- SMS codes as a second factor: a confirmed phone number per user, kept sealed, and the codes sent
-- to it while confirming the number and at login. See services/src/identity/two-factor-store.ts.

ALTER TABLE user_two_factor
  -- The phone number (E.164) sealed with the master keyring ('tgs1.' ...), context
  -- 'sms_phone:user:<uuid>': personal data, never stored in the clear.
  ADD COLUMN sms_phone_sealed text CHECK (sms_phone_sealed IS NULL OR sms_phone_sealed LIKE 'tgs1.%'),
  -- What the person is shown: the country code and the last four digits, like '+1 *** *** 4567'.
  ADD COLUMN sms_phone_masked text,
  -- Set when a code sent to the number came back: from then on a login can use SMS codes. Until
  -- then the number is pending, and the three columns below hold the confirmation code.
  ADD COLUMN sms_confirmed_at timestamptz,
  -- SHA-256 (hex) of the code sent to confirm the number; it works until sms_enrolment_expires_at
  -- and for five wrong tries.
  ADD COLUMN sms_enrolment_code_hash text,
  ADD COLUMN sms_enrolment_expires_at timestamptz,
  ADD COLUMN sms_enrolment_attempts integer NOT NULL DEFAULT 0 CHECK (sms_enrolment_attempts >= 0),
  ADD CONSTRAINT user_two_factor_sms_phone_masked CHECK ((sms_phone_sealed IS NULL) = (sms_phone_masked IS NULL)),
  ADD CONSTRAINT user_two_factor_sms_confirmed CHECK (sms_confirmed_at IS NULL OR sms_phone_sealed IS NOT NULL);

ALTER TABLE two_factor_challenges
  -- SHA-256 (hex) of the code last sent by SMS for this challenge, if any.
  ADD COLUMN sms_code_hash text,
  -- Text messages sent for this challenge, to bound how many one password can trigger.
  ADD COLUMN sms_codes_sent integer NOT NULL DEFAULT 0 CHECK (sms_codes_sent >= 0);

-- One row per text message sent to a user (confirmation and login codes alike). Each costs money
-- and lands on someone's phone, so an account gets a bounded number an hour; rows older than the
-- window are deleted as new ones arrive. No number and no text: only who and when.
CREATE TABLE sms_sends (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sms_sends_user_id_idx ON sms_sends (user_id, sent_at);
