-- When an invoice must be paid (services/src/billing/period-close.ts, subscriptions.ts; docs/billing.md
-- "Grace and 402"). A manual invoice is due TOLLGATE_BILLING_PAYMENT_TERMS_DAYS after it is finalized;
-- a Stripe-collected one has no due date of ours until Stripe reports its payment failed, which makes
-- it due at once. An open invoice past its due date makes the subscription past_due (its grace runs
-- from the due date), and the subscription is paid up only when no such invoice is left.
-- Invoices finalized before this migration have none: they never make a subscription past due.
ALTER TABLE invoices ADD COLUMN due_at timestamptz;
CREATE INDEX invoices_overdue ON invoices (subscription_id, due_at) WHERE status = 'open' AND kind = 'invoice';
