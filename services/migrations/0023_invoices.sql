-- Invoices (services/src/billing/period-close.ts, invoices.ts; docs/billing.md "Period close" and
-- "Invoices"). Our ledger is authoritative: an invoice and its lines are stored before anything is
-- pushed to a provider, and a finalized invoice never changes (corrections are credit notes).

-- Every billing period a subscription left, recorded by a trigger whenever its period moves on (the
-- lifecycle job renewing a manual subscription, a Stripe renewal event, a downgrade at period end) or
-- it is canceled: whoever advances a subscription, the ended period waits here for the period close,
-- with the plan version, fee and status it had during that period.
CREATE TABLE billing_periods (
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  plan_id uuid NOT NULL REFERENCES plans (id),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  billing_interval text NOT NULL CHECK (billing_interval IN ('month', 'year')),
  provider text NOT NULL CHECK (provider IN ('manual', 'stripe')),
  -- minor units, e.g. cents: the base fee of the period
  amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
  -- a trial period is free: no invoice
  was_trial boolean NOT NULL,
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL CHECK (period_end > period_start),
  closed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subscription_id, period_start)
);
CREATE INDEX billing_periods_open ON billing_periods (period_end) WHERE closed_at IS NULL;

CREATE FUNCTION record_billing_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.current_period_start IS DISTINCT FROM OLD.current_period_start
     OR (NEW.status = 'canceled' AND OLD.status <> 'canceled') THEN
    INSERT INTO billing_periods (subscription_id, team_id, plan_id, currency, billing_interval, provider,
                                 amount_minor, was_trial, period_start, period_end)
    VALUES (OLD.id, OLD.team_id, OLD.plan_id, OLD.currency, OLD.billing_interval, OLD.provider, OLD.amount_minor,
            OLD.status = 'trialing', OLD.current_period_start,
            CASE WHEN NEW.status = 'canceled' AND OLD.status <> 'canceled'
                   THEN greatest(least(coalesce(NEW.canceled_at, now()), OLD.current_period_end),
                                 OLD.current_period_start + interval '1 millisecond')
                 ELSE least(OLD.current_period_end, greatest(NEW.current_period_start, OLD.current_period_start + interval '1 millisecond'))
            END)
    ON CONFLICT (subscription_id, period_start) DO NOTHING;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER subscriptions_record_billing_period AFTER UPDATE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION record_billing_period();

CREATE SEQUENCE invoice_numbers;

CREATE TABLE invoices (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
  subscription_id uuid NOT NULL REFERENCES subscriptions (id) ON DELETE RESTRICT,
  -- 'invoice', or 'credit_note': a correction of a finalized invoice (`corrects_invoice_id`), whose
  -- lines and totals are negative.
  kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'credit_note')),
  corrects_invoice_id uuid REFERENCES invoices (id),
  CHECK ((kind = 'credit_note') = (corrects_invoice_id IS NOT NULL)),
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL CHECK (period_end > period_start),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status text NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void')),
  -- all minor units, e.g. cents. total = subtotal - credits_applied + tax.
  subtotal_minor bigint NOT NULL,
  credits_applied_minor bigint NOT NULL DEFAULT 0 CHECK (credits_applied_minor >= 0),
  -- Tax is not computed yet: always 0, kept so a tax engine adds a number, not a column.
  tax_minor bigint NOT NULL DEFAULT 0,
  total_minor bigint NOT NULL CHECK (total_minor = subtotal_minor - credits_applied_minor + tax_minor),
  number text NOT NULL UNIQUE DEFAULT ('TG-' || lpad(nextval('invoice_numbers')::text, 6, '0')),
  provider text NOT NULL CHECK (provider IN ('manual', 'stripe')),
  provider_invoice_id text UNIQUE CHECK (length(provider_invoice_id) <= 255),
  -- Where the push to the provider stands: 'none' (manual), 'pending', 'invoice_created', 'items_pushed', 'finalized'.
  push_state text NOT NULL DEFAULT 'none' CHECK (push_state IN ('none', 'pending', 'invoice_created', 'items_pushed', 'finalized')),
  finalized_at timestamptz,
  paid_at timestamptz,
  voided_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'draft') = (finalized_at IS NULL)),
  CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
-- A period is invoiced once.
CREATE UNIQUE INDEX invoices_one_per_period ON invoices (subscription_id, period_start) WHERE kind = 'invoice';
CREATE INDEX invoices_team ON invoices (team_id, created_at);

CREATE TABLE invoice_lines (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE RESTRICT,
  position integer NOT NULL CHECK (position >= 0),
  kind text NOT NULL CHECK (kind IN ('base_fee', 'overage', 'proration', 'credit')),
  metric text,
  -- units of the metric (overage), 1 otherwise
  quantity bigint NOT NULL CHECK (quantity >= 0),
  -- the price as the plan gave it ("0.0005", or a description of tiers); text, never a float
  unit_price text NOT NULL,
  -- minor units, rounded once for the line (docs/billing.md "Rounding")
  amount_minor bigint NOT NULL,
  description text NOT NULL,
  -- The push of this line to the provider: the idempotency key used and the provider's item id.
  provider_item_id text,
  push_idempotency_key text,
  pushed_at timestamptz,
  UNIQUE (invoice_id, position)
);

-- Finalized invoices are immutable: once an invoice has left draft, its amounts, period and lines
-- never change. Only the status may move on (open -> paid or void) and the provider push state be
-- recorded.
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN
      RAISE EXCEPTION 'invoice % is finalized and cannot be deleted', OLD.number USING ERRCODE = 'check_violation';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status <> 'draft' AND (
       NEW.subtotal_minor <> OLD.subtotal_minor OR NEW.credits_applied_minor <> OLD.credits_applied_minor
       OR NEW.tax_minor <> OLD.tax_minor OR NEW.total_minor <> OLD.total_minor OR NEW.currency <> OLD.currency
       OR NEW.period_start <> OLD.period_start OR NEW.period_end <> OLD.period_end OR NEW.team_id <> OLD.team_id
       OR NEW.number <> OLD.number OR NEW.kind <> OLD.kind
       OR NEW.finalized_at IS DISTINCT FROM OLD.finalized_at
       OR (OLD.status IN ('paid', 'void') AND NEW.status <> OLD.status)) THEN
    RAISE EXCEPTION 'invoice % is finalized and immutable: issue a credit note', OLD.number USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_immutable();

CREATE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  invoice_status text;
BEGIN
  SELECT status INTO invoice_status FROM invoices WHERE id = coalesce(NEW.invoice_id, OLD.invoice_id);
  IF TG_OP = 'INSERT' AND invoice_status <> 'draft' THEN
    RAISE EXCEPTION 'lines cannot be added to a finalized invoice: issue a credit note' USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'UPDATE' AND invoice_status <> 'draft' AND (
       NEW.amount_minor <> OLD.amount_minor OR NEW.quantity <> OLD.quantity OR NEW.kind <> OLD.kind
       OR NEW.unit_price <> OLD.unit_price OR NEW.description <> OLD.description
       OR NEW.metric IS DISTINCT FROM OLD.metric OR NEW.invoice_id <> OLD.invoice_id OR NEW.position <> OLD.position) THEN
    RAISE EXCEPTION 'the lines of a finalized invoice are immutable: issue a credit note' USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'DELETE' AND invoice_status <> 'draft' THEN
    RAISE EXCEPTION 'the lines of a finalized invoice are immutable: issue a credit note' USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable();
