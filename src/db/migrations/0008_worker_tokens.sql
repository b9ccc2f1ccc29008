-- Worker tokens: the credential of a remote transcription worker (`sotto worker`). A worker never
-- gets database credentials or the master key; it talks to /api/v1/worker with one of these.
-- Only the SHA-256 of the token's secret is stored: the secret is 256 random bits, so a hash
-- cannot be brute-forced, and a database leak does not leak live tokens.
CREATE TABLE worker_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- NULL: a platform worker that serves every org (created by the operator with the CLI).
  org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  token_hash text NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  -- The admin who created it (NULL: the operator, through the CLI).
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX worker_tokens_org_idx ON worker_tokens (org_id, created_at);

-- Org admins see and manage their org's tokens under RLS; platform tokens (org_id NULL) match no
-- tenant policy, so only the system context (CLI, token checks) sees them.
SELECT sotto_enable_tenant_rls('worker_tokens');
GRANT SELECT, INSERT, UPDATE ON worker_tokens TO sotto_app;
GRANT SELECT, INSERT, UPDATE ON worker_tokens TO sotto_system;

-- Which worker token holds a job's lease (NULL: the in-process worker, or nobody). The audio and
-- result routes check it, so a worker only ever reaches the job it holds; revoking a token hands
-- its jobs back at once.
ALTER TABLE recording_jobs
  ADD COLUMN worker_token_id uuid REFERENCES worker_tokens (id) ON DELETE SET NULL;
CREATE INDEX recording_jobs_worker_idx ON recording_jobs (worker_token_id) WHERE worker_token_id IS NOT NULL;
