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

CREATE FUNCTION subscription_cycle_anchor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.cycle_anchor_at := coalesce(NEW.cycle_anchor_at, NEW.current_period_start);
  ELSIF NEW.current_period_start IS DISTINCT FROM OLD.current_period_start
        -- an anchor the statement sets itself (the lifecycle job) is kept as given
        AND NEW.cycle_anchor_at IS NOT DISTINCT FROM OLD.cycle_anchor_at
        AND (OLD.status = 'trialing' AND NEW.status <> 'trialing'
             OR NEW.current_period_start IS DISTINCT FROM OLD.current_period_end
             OR NEW.billing_interval IS DISTINCT FROM OLD.billing_interval) THEN
    NEW.cycle_anchor_at := NEW.current_period_start;
  END IF;
  IF NEW.status <> 'canceled' THEN
    UPDATE teams SET billing_anchor_at = NEW.cycle_anchor_at
    WHERE id = NEW.team_id AND billing_anchor_at IS DISTINCT FROM NEW.cycle_anchor_at;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER subscriptions_cycle_anchor BEFORE INSERT OR UPDATE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION subscription_cycle_anchor();

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
    VALUES (OLD.id, OLD.team_id, OLD.plan_id, OLD.currency, OLD.billing_interval, OLD.provider, OLD.amount_minor,
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
