-- Every *_at column is a timestamptz (storage.test.ts). The newest provider event applied to a
-- subscription is kept as Stripe gives it, whole seconds since the epoch (`event.created`), so the
-- column says what it holds instead.
ALTER TABLE subscriptions RENAME COLUMN provider_synced_at TO provider_event_created;
