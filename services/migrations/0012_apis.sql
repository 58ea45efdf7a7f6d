-- The APIs the gateway serves (services/src/apis), which API keys may be limited to, and the version
-- of the routing configuration every gateway follows (docs/gateway.md#apis-and-routing).
-- 0001 has no `apis` table, so it is created here.

CREATE TABLE apis (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- The gateway serves every API at /<slug>/...; the reserved words are paths the gateway answers itself.
  slug text NOT NULL UNIQUE CHECK (
    slug ~ '^[a-z0-9][a-z0-9-]{0,62}$' AND slug NOT IN ('healthz', 'readyz', 'metrics', 'v1', '_tollgate')
  ),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- Lower-case host names without port, in the order given. Which API owns a host is api_hosts.
  hosts text[] NOT NULL DEFAULT '{}' CHECK (array_position(hosts, NULL) IS NULL AND cardinality(hosts) <= 50),
  -- A second prefix besides /<slug>: starts with /, no trailing /. Which API owns it is api_path_prefixes.
  path_prefix text CHECK (
    length(path_prefix) <= 200 AND path_prefix ~ '^/[A-Za-z0-9._~!$&''()*+,;=:@%/-]*[A-Za-z0-9._~!$&''()*+,;=:@%-]$'
  ),
  -- http(s) base URLs, tried round-robin; checked in full (no credentials, query or fragment) by apis.ts.
  upstreams text[] NOT NULL CHECK (
    cardinality(upstreams) BETWEEN 1 AND 20 AND array_position(upstreams, NULL) IS NULL
  ),
  -- milliseconds
  timeout_ms integer NOT NULL DEFAULT 30000 CHECK (timeout_ms BETWEEN 100 AND 300000),
  failure_policy text NOT NULL DEFAULT 'fail-closed' CHECK (failure_policy IN ('fail-open', 'fail-closed')),
  metered_metrics text[] NOT NULL DEFAULT '{calls,bandwidth}' CHECK (
    metered_metrics <@ ARRAY['calls', 'bandwidth']::text[] AND array_position(metered_metrics, NULL) IS NULL
  ),
  -- Ordered [{"name": ..., "config": {...}}]; request hooks run in this order.
  plugins jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(plugins) = 'array'),
  created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- A host belongs to one API at most: the primary key is the guarantee, whatever writes the table.
-- apis.ts keeps these rows equal to apis.hosts, in the same transaction.
CREATE TABLE api_hosts (
  host text PRIMARY KEY CHECK (host = lower(host) AND length(host) <= 253),
  api_id uuid NOT NULL REFERENCES apis (id) ON DELETE CASCADE
);
CREATE INDEX api_hosts_api_id_idx ON api_hosts (api_id);

-- Every path prefix the gateway routes: /<slug> of each API and its path_prefix, so no two APIs claim
-- the same prefix, nor one API's path_prefix another's /<slug>. Kept equal to apis by apis.ts.
CREATE TABLE api_path_prefixes (
  prefix text PRIMARY KEY,
  api_id uuid NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('slug', 'path_prefix'))
);
CREATE INDEX api_path_prefixes_api_id_idx ON api_path_prefixes (api_id);

-- API keys limited to some APIs (a key with no rows here may call every API). RESTRICT: deleting an
-- API must decide what happens to such keys (apis.ts: refuse, or with force revoke the keys left
-- with no API), never silently widen a key to every API.
CREATE TABLE api_key_apis (
  api_key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  api_id uuid NOT NULL REFERENCES apis (id) ON DELETE RESTRICT,
  PRIMARY KEY (api_key_id, api_id)
);
CREATE INDEX api_key_apis_api_id_idx ON api_key_apis (api_id);

-- One row: the version of the routing configuration. Every change to it bumps the version in its
-- own transaction (which also serialises those changes on this row), then publishes the new version
-- on the config bus so gateways reload.
CREATE TABLE config_version (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO config_version DEFAULT VALUES;
