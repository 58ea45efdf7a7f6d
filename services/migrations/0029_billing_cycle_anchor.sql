-- Billing cycle anchors (docs/billing.md "Billing cycles and usage months"). A subscription's
-- periods and the months in which the gateway counts a team's quotas must be the same months, or
-- the invoice rates other usage than the gateway enforced and alerts warned about.
--
-- `cycle_anchor_at` is when the subscription's current billing cycle started: its first period, the
-- end of its trial, or the instant its interval changed. Every period of the cycle is counted in
-- whole months from it (an anchor on the 31st gives Feb 28/29, then Mar 31: no drift), and the team's
-- `billing_anchor_at`, from which the gateway, quota status and usage alerts count quota months,
-- follows the anchor of the team's live subscription. A renewal (the next period starting where the
-- last ended, on the same interval) keeps the anchor.
ALTER TABLE subscriptions ADD COLUMN cycle_anchor_at timestamptz;
UPDATE subscriptions SET cycle_anchor_at = current_period_start;
ALTER TABLE subscriptions ALTER COLUMN cycle_anchor_at SET NOT NULL;

-- The base fee the current period started with. A period is invoiced at its end (manual provider),
-- and an upgrade in it is settled by its proration (the rest of the period at the new fee less the
-- old): the period's base-fee line is the fee it started with, never the fee it ended with, or the
-- upgrade would be charged twice.
ALTER TABLE subscriptions ADD COLUMN period_amount_minor bigint CHECK (period_amount_minor >= 0);
UPDATE subscriptions SET period_amount_minor = amount_minor;
ALTER TABLE subscriptions ALTER COLUMN period_amount_minor SET NOT NULL;

CREATE FUNCTION subscription_period_fields() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.cycle_anchor_at := coalesce(NEW.cycle_anchor_at, NEW.current_period_start);
    NEW.period_amount_minor := NEW.amount_minor;
  ELSIF NEW.current_period_start IS DISTINCT FROM OLD.current_period_start THEN
    NEW.period_amount_minor := NEW.amount_minor;
    -- A new cycle, unless the statement set the anchor itself (the lifecycle job does).
    IF NEW.cycle_anchor_at IS NOT DISTINCT FROM OLD.cycle_anchor_at
       AND (OLD.status = 'trialing' AND NEW.status <> 'trialing'
            OR NEW.current_period_start IS DISTINCT FROM OLD.current_period_end
            OR NEW.billing_interval IS DISTINCT FROM OLD.billing_interval) THEN
      NEW.cycle_anchor_at := NEW.current_period_start;
    END IF;
  END IF;
  IF NEW.status <> 'canceled' THEN
    UPDATE teams SET billing_anchor_at = NEW.cycle_anchor_at
    WHERE id = NEW.team_id AND billing_anchor_at IS DISTINCT FROM NEW.cycle_anchor_at;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER subscriptions_period_fields BEFORE INSERT OR UPDATE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION subscription_period_fields();

-- The period close counts an annual period's usage month by month from the anchor the period had.
ALTER TABLE billing_periods ADD COLUMN cycle_anchor_at timestamptz;
UPDATE billing_periods SET cycle_anchor_at = period_start;
ALTER TABLE billing_periods ALTER COLUMN cycle_anchor_at SET NOT NULL;

CREATE OR REPLACE FUNCTION record_billing_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.current_period_start IS DISTINCT FROM OLD.current_period_start
     OR (NEW.status = 'canceled' AND OLD.status <> 'canceled') THEN
    INSERT INTO billing_periods (subscription_id, team_id, plan_id, currency, billing_interval, provider,
                                 amount_minor, was_trial, period_start, period_end, cycle_anchor_at)
    VALUES (OLD.id, OLD.team_id, OLD.plan_id, OLD.currency, OLD.billing_interval, OLD.provider, OLD.period_amount_minor,
            OLD.status = 'trialing', OLD.current_period_start,
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
