-- Data-portability exports (docs/lifecycle.md): an owner/admin asks for a zip of the org's data;
-- a node builds it in the background and seals it under a random per-file content key wrapped by
-- the org's data key (content_key_enc, AAD bound to this row), like kept audio. The sealed file
-- lives at <dataDir>/exports/<org>/<id>.bin until it expires (or is deleted); then the row stays,
-- status 'expired', as a record that the export existed.
CREATE TABLE org_exports (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- The admin who asked (NULL once that account is gone; the export still expires on time).
  requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'building', 'ready', 'failed', 'expired')),
  created_at timestamptz NOT NULL DEFAULT now(),
  ready_at timestamptz,
  expires_at timestamptz,
  size_bytes bigint,
  sha256 text CHECK (sha256 IS NULL OR sha256 ~ '^[0-9a-f]{64}$'),
  error_code text CHECK (error_code IS NULL OR length(error_code) <= 64),
  content_key_enc bytea,
  -- Building: the node holding it renews the lease; a dead node's export is taken again after it.
  lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  items_done integer NOT NULL DEFAULT 0,
  items_total integer NOT NULL DEFAULT 0
);
CREATE INDEX org_exports_org_idx ON org_exports (org_id, created_at);
CREATE INDEX org_exports_status_idx ON org_exports (status);
-- One export in flight per org: the database, not a read-then-insert race, enforces it.
CREATE UNIQUE INDEX org_exports_one_active ON org_exports (org_id) WHERE status IN ('queued', 'building');

SELECT sotto_enable_tenant_rls('org_exports');
GRANT SELECT, INSERT, UPDATE, DELETE ON org_exports TO sotto_app;
-- The builder claims queued exports of any org, and the expiry sweep lists them (system context).
GRANT SELECT, UPDATE ON org_exports TO sotto_system;
