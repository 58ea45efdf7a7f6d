-- Each background-worker process records that it is alive, so the API can report how many workers
-- are running even when they are separate processes (docker-compose) or on other machines.
CREATE TABLE worker_heartbeats (
  instance_id text PRIMARY KEY,
  hostname text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  started_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL
);
CREATE INDEX worker_heartbeats_last_seen_idx ON worker_heartbeats (last_seen_at);
