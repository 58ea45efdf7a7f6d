-- Voiding invoices and pushing credit notes to Stripe (services/src/billing/invoices.ts,
-- invoice-credit-notes.ts; docs/billing.md "Voiding an invoice" and "Credit notes at Stripe").

-- Why an operator voided an open invoice (optional); voided_at (migration 0023) says when, and only
-- a void invoice has it.
ALTER TABLE invoices ADD COLUMN void_reason text CHECK (length(void_reason) BETWEEN 1 AND 500);
ALTER TABLE invoices ADD CONSTRAINT invoices_void_recorded CHECK ((status = 'void') = (voided_at IS NOT NULL));

-- A credit note of an invoice pushed to Stripe is pushed too: its Stripe id (cn_...) once created.
-- Its push state is `push_state` ('pending' until Stripe answered, then 'finalized': a Stripe credit
-- note is issued when created); its idempotency key is derived from our id (`credit-note:<id>`), so a
-- retry after a crash finds the same Stripe credit note. Kept apart from provider_invoice_id, which
-- names invoices only (reconciliation compares those with Stripe's invoices).
ALTER TABLE invoices ADD COLUMN provider_credit_note_id text UNIQUE CHECK (length(provider_credit_note_id) <= 255);
ALTER TABLE invoices ADD CONSTRAINT invoices_credit_note_id_only_on_credit_notes
  CHECK (provider_credit_note_id IS NULL OR kind = 'credit_note');

-- Voiding an invoice gives back the credits its period close consumed: one `consumption_reversal`
-- entry per consumption (idempotency key `void:<consumption entry id>`), positive, returning each
-- amount to the grant it was taken from.
ALTER TABLE credit_entries DROP CONSTRAINT credit_entries_kind_check;
ALTER TABLE credit_entries ADD CONSTRAINT credit_entries_kind_check
  CHECK (kind IN ('grant', 'consumption', 'expiry', 'refund_reversal', 'consumption_reversal'));
-- The sign rule of migration 0019 was a column CHECK naming two columns, so PostgreSQL named it
-- itself: drop it by what it says.
DO $$
DECLARE
  name text;
BEGIN
  FOR name IN
    SELECT conname FROM pg_constraint
    WHERE conrelid = 'credit_entries'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%delta > 0%'
  LOOP
    EXECUTE format('ALTER TABLE credit_entries DROP CONSTRAINT %I', name);
  END LOOP;
END;
$$;
ALTER TABLE credit_entries ADD CONSTRAINT credit_entries_delta_check
  CHECK ((kind = 'grant' AND delta > 0) OR (kind = 'consumption_reversal' AND delta >= 0)
         OR (kind NOT IN ('grant', 'consumption_reversal') AND delta <= 0));
