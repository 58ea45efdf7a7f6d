-- Outgoing webhooks (services/src/webhooks, docs/webhooks.md): a team's endpoints, the events that
-- happened to the team, one delivery per event and endpoint, and every HTTP attempt of a delivery.
-- Events and deliveries are written in the transaction of the change they describe (enqueueTeamEvent),
-- so a committed change always has its event and a rolled-back one never does.

CREATE TABLE webhook_endpoints (
  id uuid PRIMARY KEY,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
  description text CHECK (length(description) <= 500),
  -- The event types the endpoint subscribes to (webhook-events.ts lists them); never empty.
  event_types text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 50 AND array_position(event_types, NULL) IS NULL),
  -- The signing secret (whsec_...), sealed with the master keyring under `webhook_secret:endpoint:<id>`.
  secret_sealed text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_team ON webhook_endpoints (team_id, created_at);

CREATE TABLE webhook_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  type text NOT NULL CHECK (type ~ '^[a-z_]+(\.[a-z_]+)*$'),
  -- The `data` object of the delivered body.
  payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_team ON webhook_events (team_id, created_at);

CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  event_id uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  -- pending: not tried yet; failed: the last attempt failed and another is scheduled; succeeded: a 2xx
  -- answer; exhausted: no attempt succeeded before give_up_at.
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'exhausted')),
  attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  -- When the job may try next; also the end of a worker's claim while it sends. NULL once finished.
  next_attempt_at timestamptz,
  -- No attempt is scheduled after this: 3 days after the event (or after the replay).
  give_up_at timestamptz NOT NULL,
  -- The worker run that holds the delivery while it sends; its result is recorded only under this claim.
  claim_id uuid,
  last_status_code integer,
  last_error text CHECK (length(last_error) <= 1000),
  -- Milliseconds the last attempt took.
  last_response_ms integer,
  -- The delivery this one replays, if any.
  replay_of uuid REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  CHECK ((status IN ('pending', 'failed')) = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX webhook_deliveries_team ON webhook_deliveries (team_id, created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempted_at timestamptz NOT NULL,
  -- NULL when no HTTP answer came (refused address, connection error, timeout).
  status_code integer,
  error text CHECK (length(error) <= 1000),
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  -- The first 2 KiB of the answer, as text.
  response_body text CHECK (length(response_body) <= 2048)
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
