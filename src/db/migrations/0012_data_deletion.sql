-- Data lifecycle, part 2 (docs/lifecycle.md): deletion receipts, account deletion, organization
-- deletion with crypto-shredding.

-- Org data keys are wrapped by a per-org key-encryption key (KEK) kept OUTSIDE the database, in
-- the key directory (SOTTO_KEY_DIR), each KEK file sealed by the master key. Destroying the file
-- makes every copy of the org's rows unreadable, backups included. Rows written before 0012 are
-- still wrapped directly by the master key ('master') until the start-up upgrade rewraps them.
-- master_version stays meaningful: for 'kek' rows it is the master version sealing the KEK file.
ALTER TABLE org_keys ADD COLUMN wrapped_by text NOT NULL DEFAULT 'master'
  CHECK (wrapped_by IN ('master', 'kek'));
GRANT UPDATE, DELETE ON org_keys TO sotto_system;

-- What happens to a departed member's recordings (account deletion): 'transfer' to an owner,
-- or 'delete' (with receipts). Not secret: a plain column like retention_days.
ALTER TABLE orgs ADD COLUMN departed_user_recordings text NOT NULL DEFAULT 'transfer'
  CHECK (departed_user_recordings IN ('transfer', 'delete'));

-- Account deletions asked for by the user: login ends at once, the rest is done by a job before
-- due_at (+24 h is the promise; the default due time is the request time). No FK to users: the
-- row outlives the user row as the record that the job ran (completed_at).
CREATE TABLE account_deletions (
  user_id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- Where the receipt goes; removed when the job completes.
  email text CHECK (email IS NULL OR length(email) <= 320),
  requested_at timestamptz NOT NULL,
  due_at timestamptz NOT NULL,
  completed_at timestamptz,
  attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX account_deletions_due_idx ON account_deletions (due_at) WHERE completed_at IS NULL;

SELECT sotto_enable_tenant_rls('account_deletions');
GRANT SELECT, INSERT, UPDATE, DELETE ON account_deletions TO sotto_app;
-- The job lists due deletions of every org (system context), then acts per org.
GRANT SELECT ON account_deletions TO sotto_system;
