-- Incoming Stripe webhooks (services/src/billing/stripe-webhooks.ts, docs/stripe.md): each verified
-- event is stored once by its Stripe id before we answer, then processed by the worker's
-- stripe-events job, oldest Stripe `created` first. A duplicate delivery finds its id taken and
-- changes nothing.

CREATE TABLE stripe_events (
  -- Stripe's event id (evt_...).
  id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
  type text NOT NULL CHECK (length(type) BETWEEN 1 AND 255),
  -- data.object.id: the Stripe object the event is about (sub_..., in_...), so a handler can tell
  -- whether a newer event about the same object was already processed. NULL when the object has none.
  object_id text CHECK (length(object_id) <= 255),
  -- Stripe's `created`, unix seconds: the order events are processed in.
  created bigint NOT NULL,
  livemode boolean NOT NULL,
  -- The whole event as Stripe sent it.
  payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  -- pending: waiting for its first attempt or a retry; processed: its handler succeeded; ignored: no
  -- handler takes its type; failed: its handler failed on every attempt and nobody retries it.
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error text CHECK (length(last_error) <= 1000),
  -- When the job may try it (next); NULL once it is no longer pending.
  next_attempt_at timestamptz,
  received_at timestamptz NOT NULL DEFAULT now(),
  -- When it was processed, ignored or given up on.
  finished_at timestamptz,
  CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX stripe_events_pending ON stripe_events (created, received_at) WHERE status = 'pending';
CREATE INDEX stripe_events_object ON stripe_events (object_id, created) WHERE status = 'processed';
