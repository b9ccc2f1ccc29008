-- The head (last seq and hash) of each audit chain, written in the same transaction as every
-- append. The chain alone cannot show that its LAST entries were removed: what is left is still a
-- valid chain. The head remembers how far the chain went, and new appends continue from the head,
-- so a removed tail becomes a visible gap instead of being silently re-used.
CREATE TABLE audit_heads (
  -- NULL: the platform chain (support accounts, system events).
  org_id uuid UNIQUE REFERENCES orgs (id) ON DELETE CASCADE,
  seq bigint NOT NULL CHECK (seq > 0),
  hash text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- UNIQUE treats NULLs as distinct: allow exactly one platform head.
CREATE UNIQUE INDEX audit_heads_platform_idx ON audit_heads ((org_id IS NULL)) WHERE org_id IS NULL;

-- A head only moves forward, one entry at a time, and never changes chain. The roles have no
-- DELETE on it, so rewinding a head to hide removed entries needs the database superuser.
CREATE FUNCTION audit_heads_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.org_id IS DISTINCT FROM OLD.org_id OR NEW.seq <> OLD.seq + 1 THEN
    RAISE EXCEPTION 'audit_heads only advances by one entry';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_heads_forward BEFORE UPDATE ON audit_heads
  FOR EACH ROW EXECUTE FUNCTION audit_heads_forward_only();

-- Existing chains start with their current last entry as head.
INSERT INTO audit_heads (org_id, seq, hash)
SELECT DISTINCT ON (org_id) org_id, seq, hash FROM audit_log ORDER BY org_id, seq DESC;

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_heads
  USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
  WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE ON audit_heads TO sotto_app, sotto_system;
