-- The plan version a billing period is rated with (services/src/billing/period-close.ts; docs/billing.md
-- "Period close"). The period close rates a period's overage under the plan it was recorded with. A
-- change that applies inside the period (an upgrade, a move to another version now) applies to the
-- whole period; a change waiting for the period end belongs to the next period only. When our
-- lifecycle job applies such a pending change at the period end of a Stripe subscription before
-- Stripe's renewal event has moved the period on, the ended period must still be rated with the plan
-- it had: `period_plan_id` keeps it until the period moves.
ALTER TABLE subscriptions ADD COLUMN period_plan_id uuid REFERENCES plans (id);
UPDATE subscriptions SET period_plan_id = plan_id;
ALTER TABLE subscriptions ALTER COLUMN period_plan_id SET NOT NULL;

CREATE OR REPLACE FUNCTION subscription_period_fields() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.cycle_anchor_at := coalesce(NEW.cycle_anchor_at, NEW.current_period_start);
    NEW.period_amount_minor := NEW.amount_minor;
    NEW.period_plan_id := NEW.plan_id;
  ELSIF NEW.current_period_start IS DISTINCT FROM OLD.current_period_start THEN
    NEW.period_amount_minor := NEW.amount_minor;
    NEW.period_plan_id := NEW.plan_id;
    -- A new cycle, unless the statement set the anchor itself (the lifecycle job does).
    IF NEW.cycle_anchor_at IS NOT DISTINCT FROM OLD.cycle_anchor_at
       AND (OLD.status = 'trialing' AND NEW.status <> 'trialing'
            OR NEW.current_period_start IS DISTINCT FROM OLD.current_period_end
            OR NEW.billing_interval IS DISTINCT FROM OLD.billing_interval) THEN
      NEW.cycle_anchor_at := NEW.current_period_start;
    END IF;
  ELSIF NEW.plan_id IS DISTINCT FROM OLD.plan_id
        -- a pending change applied without moving the period belongs to the next period
        AND NOT (OLD.pending_plan_id IS NOT NULL AND NEW.pending_plan_id IS NULL
                 AND NEW.plan_id = OLD.pending_plan_id) THEN
    NEW.period_plan_id := NEW.plan_id;
  END IF;
  IF NEW.status <> 'canceled' THEN
    UPDATE teams SET billing_anchor_at = NEW.cycle_anchor_at
    WHERE id = NEW.team_id AND billing_anchor_at IS DISTINCT FROM NEW.cycle_anchor_at;
  END IF;
  RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION record_billing_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.current_period_start IS DISTINCT FROM OLD.current_period_start
     OR (NEW.status = 'canceled' AND OLD.status <> 'canceled') THEN
    INSERT INTO billing_periods (subscription_id, team_id, plan_id, currency, billing_interval, provider,
                                 amount_minor, was_trial, period_start, period_end, cycle_anchor_at)
    VALUES (OLD.id, OLD.team_id, OLD.period_plan_id, OLD.currency, OLD.billing_interval, OLD.provider,
            OLD.period_amount_minor, OLD.status = 'trialing', OLD.current_period_start,
            CASE WHEN NEW.status = 'canceled' AND OLD.status <> 'canceled'
                   THEN greatest(least(coalesce(NEW.canceled_at, now()), OLD.current_period_end),
                                 OLD.current_period_start + interval '1 millisecond')
                 ELSE least(OLD.current_period_end, greatest(NEW.current_period_start, OLD.current_period_start + interval '1 millisecond'))
            END,
            OLD.cycle_anchor_at)
    ON CONFLICT (subscription_id, period_start) DO NOTHING;
  END IF;
  RETURN NEW;
END;
$$;
