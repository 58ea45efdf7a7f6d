-- A team admin can require every member to use two-factor authentication.
ALTER TABLE teams ADD COLUMN require_two_factor boolean NOT NULL DEFAULT false;
