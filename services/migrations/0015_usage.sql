-- Metering (docs/gateway.md, "Metering"): what the gateway counted, rolled up per minute, hour and
-- day, and the metrics upstreams and operators report through POST /v1/usage.
--
-- Ids are text without foreign keys on purpose: usage is billing evidence and outlives the key, API
-- or team it was counted for. Every number is an integer (bigint); latency is in microseconds.

CREATE TABLE usage_minute (
  period_start timestamptz NOT NULL,
  team_id text NOT NULL,
  api_id text NOT NULL,
  key_id text NOT NULL,
  calls bigint NOT NULL DEFAULT 0,
  request_bytes bigint NOT NULL DEFAULT 0,
  response_bytes bigint NOT NULL DEFAULT 0,
  -- Sum and maximum of the calls' latencies, in microseconds.
  latency_us_sum bigint NOT NULL DEFAULT 0,
  latency_us_max bigint NOT NULL DEFAULT 0,
  status_2xx bigint NOT NULL DEFAULT 0,
  status_3xx bigint NOT NULL DEFAULT 0,
  status_4xx bigint NOT NULL DEFAULT 0,
  status_5xx bigint NOT NULL DEFAULT 0,
  -- Calls served beyond the plan's quota (billed as overage).
  overage_calls bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, period_start, api_id, key_id)
);

CREATE TABLE usage_hour (LIKE usage_minute INCLUDING DEFAULTS, PRIMARY KEY (team_id, period_start, api_id, key_id));
CREATE TABLE usage_day (LIKE usage_minute INCLUDING DEFAULTS, PRIMARY KEY (team_id, period_start, api_id, key_id));

-- One row per counter batch written into the rollups, in the same transaction as its rows: a batch
-- found here was written, so a flusher that crashed before deleting it from the counter store only
-- deletes it the next time (never adds it twice).
CREATE TABLE usage_flushes (
  batch_id text PRIMARY KEY,
  -- Cells (minute x team x key x API) the batch held, for operators reading the log of flushes.
  cells integer NOT NULL,
  flushed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_flushes_flushed_at_idx ON usage_flushes (flushed_at);

-- Metrics reported through POST /v1/usage (e.g. storage_bytes). Kept whole: the billing evidence.
CREATE TABLE usage_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  team_id uuid NOT NULL,
  metric text NOT NULL CHECK (metric ~ '^[a-z][a-z0-9_]{0,62}$'),
  quantity bigint NOT NULL CHECK (quantity >= 0),
  -- When the usage happened (the reporter's `at`, else when it was received).
  occurred_at timestamptz NOT NULL,
  idempotency_key text NOT NULL,
  reported_by_user_id uuid,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_team_idx ON usage_events (team_id, metric, occurred_at);

-- The idempotency keys of reported events, kept at least 30 days (pruned after 35 by the flusher
-- job). The request hash tells a replay (same body: the original answer) from a conflict (409).
CREATE TABLE usage_idempotency_keys (
  team_id uuid NOT NULL,
  idempotency_key text NOT NULL,
  request_sha256 bytea NOT NULL CHECK (octet_length(request_sha256) = 32),
  event_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Per team: two teams' reports never collide.
  PRIMARY KEY (team_id, idempotency_key)
);
CREATE INDEX usage_idempotency_keys_created_at_idx ON usage_idempotency_keys (created_at);

-- Reported metrics per UTC day: the sum (counters such as emails_sent) and the maximum and latest
-- reading (levels such as storage_bytes); billing picks the aggregate a price is defined on.
CREATE TABLE usage_metric_day (
  period_start timestamptz NOT NULL,
  team_id uuid NOT NULL,
  metric text NOT NULL,
  events bigint NOT NULL,
  quantity_sum bigint NOT NULL,
  quantity_max bigint NOT NULL,
  last_quantity bigint NOT NULL,
  last_at timestamptz NOT NULL,
  PRIMARY KEY (team_id, period_start, metric)
);
