-- One definition of tenant isolation for every later table: 0001 and 0004 each spelled out the
-- same ENABLE/FORCE/POLICY loop; later migrations call this instead, so a table cannot be added
-- with a policy that differs by a typo. Usage: SELECT sotto_enable_tenant_rls('table_name');
CREATE FUNCTION sotto_enable_tenant_rls(t regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
  EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
    USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
    WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid)$p$, t);
END $$;
-- Only the migration runner (the owner) calls it; the application roles have no use for it.
REVOKE ALL ON FUNCTION sotto_enable_tenant_rls(regclass) FROM PUBLIC;
