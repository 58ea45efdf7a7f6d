-- The audit log: one row per state-changing action and per failed login or denial. Rows are
-- hash-chained (each stores the hash of the previous one) and `audit_chain_head` remembers the newest,
-- so `tollgate audit verify` finds an edited, deleted or truncated entry even when the triggers below
-- were bypassed. Rows are written only by appendAuditEntry (services/src/audit), which computes the
-- hash; this file never changes once released.

CREATE TABLE audit_log (
  -- Assigned by the append code under the chain-head lock: contiguous from 1, so a gap means a deletion.
  seq bigint PRIMARY KEY CHECK (seq >= 1),
  id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  -- Millisecond precision, set by the application, so the hash over its ISO text is reproducible.
  occurred_at timestamptz NOT NULL,
  -- No foreign key: entries outlive the users they name.
  actor_user_id uuid,
  -- Who acted, as known at the time: an email, 'system' or 'anonymous'.
  actor_label text NOT NULL,
  -- Dotted, e.g. 'auth.login_failed', 'team.member_invited'.
  action text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
  target_type text,
  target_id text,
  team_id uuid,
  ip inet,
  user_agent text,
  request_id text,
  details jsonb NOT NULL DEFAULT '{}',
  -- SHA-256 hex of the previous entry (64 zeros before the first one) and of this one.
  prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at);
CREATE INDEX audit_log_actor_user_id_idx ON audit_log (actor_user_id, seq) WHERE actor_user_id IS NOT NULL;
-- text_pattern_ops serves both `action = $1` and the prefix filter `action LIKE 'auth.%'`.
CREATE INDEX audit_log_action_idx ON audit_log (action text_pattern_ops, seq);
CREATE INDEX audit_log_team_id_idx ON audit_log (team_id, seq) WHERE team_id IS NOT NULL;

-- The newest entry, so deleting the last entries (which leaves no gap) is detected too. Appends lock
-- this row, which serializes them and makes seq contiguous.
CREATE TABLE audit_chain_head (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_seq bigint NOT NULL CHECK (last_seq >= 0),
  last_hash text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$')
);

-- Append-only: entries can be inserted, never changed or removed, and the head only moves forward.
-- A superuser can still disable these triggers; the hash chain is what catches that.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

CREATE FUNCTION audit_chain_head_only_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.last_seq <> OLD.last_seq + 1 THEN
    RAISE EXCEPTION 'the audit chain head only moves forward one entry at a time (from % to %)',
      OLD.last_seq, NEW.last_seq
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER audit_chain_head_forward_only
  BEFORE UPDATE ON audit_chain_head
  FOR EACH ROW EXECUTE FUNCTION audit_chain_head_only_forward();
CREATE TRIGGER audit_chain_head_no_delete
  BEFORE DELETE ON audit_chain_head
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_chain_head_no_truncate
  BEFORE TRUNCATE ON audit_chain_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
