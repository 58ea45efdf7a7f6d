-- What an API key may do, beyond belonging to a team (services/src/keys, docs/gateway.md#api-keys).
-- The APIs a key is limited to are the rows of api_key_apis (0012), so deleting an API has to decide
-- what happens to keys limited to it; everything else is a column here.

ALTER TABLE api_keys
  -- HTTP methods the key may call with; empty: every method.
  ADD COLUMN methods text[] NOT NULL DEFAULT '{}' CHECK (
    methods <@ ARRAY['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']::text[]
    AND array_position(methods, NULL) IS NULL
  ),
  -- Client addresses the key may be used from (IPv4 and IPv6 networks); empty: anywhere.
  ADD COLUMN allowed_cidrs cidr[] NOT NULL DEFAULT '{}' CHECK (
    array_position(allowed_cidrs, NULL) IS NULL AND cardinality(allowed_cidrs) <= 100
  ),
  -- Per-key rate-limit overrides, e.g. {"per_second": 5, "per_hour": 100}; {}: the plan's limits.
  -- Read by the gateway's limiter; checked in full (names, positive integers) by api-keys.ts.
  ADD COLUMN limits jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limits) = 'object'),
  -- Rotation with grace: the secret before the last rotation keeps working until this moment.
  ADD COLUMN previous_secret_sha256 bytea CHECK (octet_length(previous_secret_sha256) = 32),
  ADD COLUMN previous_secret_expires_at timestamptz,
  ADD COLUMN rotated_at timestamptz,
  ADD CONSTRAINT api_keys_previous_secret_complete CHECK (
    (previous_secret_sha256 IS NULL) = (previous_secret_expires_at IS NULL)
  );
