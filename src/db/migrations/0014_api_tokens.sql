-- Personal API tokens (`sotto_pat_…`): a user's credential for scripts, `sotto bot` and
-- integrations. A token acts as its user with the intersection of the user's current role and the
-- token's scopes (src/domain/api-scopes.ts). Only the SHA-256 of the 256-bit secret is stored (see
-- 0008 for why not argon2); the name is content the user typed, so it is encrypted with the org's
-- data key. Deleting the user (removal from the org) deletes their tokens with them.
CREATE TABLE api_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name_enc bytea NOT NULL,
  scopes text[] NOT NULL CHECK (
    cardinality(scopes) BETWEEN 1 AND 6
    AND scopes <@ ARRAY['recordings:read', 'recordings:write', 'live:ingest', 'org:read', 'org:admin', 'audit:read']::text[]
  ),
  token_hash text NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  last_used_at timestamptz,
  revoked_at timestamptz,
  CHECK (expires_at > created_at)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (org_id, user_id, created_at);

SELECT sotto_enable_tenant_rls('api_tokens');
GRANT SELECT, INSERT, UPDATE ON api_tokens TO sotto_app;
GRANT SELECT, INSERT, UPDATE ON api_tokens TO sotto_system;
