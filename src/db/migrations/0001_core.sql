-- Sotto core schema: organizations, accounts, sessions, keys and the audit log.
--
-- Two roles own nothing and are used with SET LOCAL ROLE inside transactions:
--   sotto_app     every tenant query; no BYPASSRLS, so row-level security always applies.
--   sotto_system  the few pre-tenant lookups (login by email, refresh by token hash, key rotation,
--                 audit verification); BYPASSRLS. Only a handful of repositories may use it.
-- On a managed PostgreSQL where the login role is not a superuser, a DBA creates these two roles
-- beforehand (see docs/deployment.md); the blocks below then only grant them.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sotto_app') THEN
    CREATE ROLE sotto_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sotto_system') THEN
    CREATE ROLE sotto_system NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;

GRANT sotto_app TO CURRENT_USER;
GRANT sotto_system TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO sotto_app, sotto_system;

CREATE TABLE orgs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  retention_days integer NOT NULL DEFAULT 90 CHECK (retention_days BETWEEN 1 AND 3650),
  store_audio boolean NOT NULL DEFAULT false,
  -- Settings that could reveal content (custom vocabulary, keyword lists): encrypted JSON.
  settings_enc bytea,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- NULL only for platform support accounts, which belong to no organization.
  org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
  email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 320),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  role text CHECK (role IN ('owner', 'admin', 'member')),
  platform_role text CHECK (platform_role IN ('support')),
  password_hash text NOT NULL,
  totp_secret_enc bytea,
  totp_enabled boolean NOT NULL DEFAULT false,
  -- Last accepted TOTP time step: a code is refused unless its step is newer (single use).
  totp_last_step bigint,
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((org_id IS NULL AND platform_role IS NOT NULL AND role IS NULL)
      OR (org_id IS NOT NULL AND platform_role IS NULL AND role IS NOT NULL))
);
CREATE INDEX users_org_idx ON users (org_id);

CREATE TABLE recovery_codes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash text NOT NULL,
  used_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);

-- A session is one login on one device; its refresh tokens form one rotation family.
CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  user_agent text NOT NULL DEFAULT '',
  ip text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Set when this token was exchanged; presenting it again is reuse and kills the family.
  rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  email text NOT NULL CHECK (email = lower(email)),
  role text NOT NULL CHECK (role IN ('admin', 'member')),
  token_hash text NOT NULL UNIQUE,
  invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX invitations_org_idx ON invitations (org_id);

CREATE TABLE support_grants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  granted_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_by uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX support_grants_org_idx ON support_grants (org_id);

-- Per-organization data keys, wrapped (AES-256-GCM) by a master key that never enters the
-- database. Destroying an org's rows here crypto-shreds all of its ciphertexts.
CREATE TABLE org_keys (
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  version integer NOT NULL CHECK (version > 0),
  wrapped bytea NOT NULL,
  master_version integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  rewrapped_at timestamptz,
  PRIMARY KEY (org_id, version)
);

-- JWT signing keys (Ed25519); private halves sealed by the master key. Platform-wide.
CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  public_jwk jsonb NOT NULL,
  private_enc bytea NOT NULL,
  master_version integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

-- Append-only, hash-chained per organization (org_id NULL: the platform chain).
CREATE TABLE audit_log (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
  seq bigint NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  actor_id uuid,
  actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'support', 'system', 'anonymous', 'worker')),
  action text NOT NULL,
  target_type text,
  target_id text,
  ip text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash text NOT NULL,
  hash text NOT NULL
);
CREATE UNIQUE INDEX audit_log_chain_idx ON audit_log (org_id, seq) WHERE org_id IS NOT NULL;
CREATE UNIQUE INDEX audit_log_platform_chain_idx ON audit_log (seq) WHERE org_id IS NULL;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Row-level security: every tenant table is ENABLE + FORCE, USING and WITH CHECK on org_id.
-- With app.org_id unset, nullif(...) yields NULL and the policy matches no row.
ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON orgs
  USING (id = nullif(current_setting('app.org_id', true), '')::uuid)
  WITH CHECK (id = nullif(current_setting('app.org_id', true), '')::uuid);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['users', 'recovery_codes', 'sessions', 'refresh_tokens', 'invitations',
                           'support_grants', 'org_keys', 'audit_log'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
      USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
      WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid)$p$, t);
  END LOOP;
END $$;
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
-- No policy for sotto_app: it sees no signing key at all. sotto_system bypasses RLS.

GRANT SELECT, INSERT, UPDATE ON orgs TO sotto_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, recovery_codes, sessions, refresh_tokens, invitations,
  support_grants TO sotto_app;
GRANT SELECT, INSERT ON org_keys TO sotto_app;
GRANT SELECT, INSERT ON audit_log TO sotto_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON orgs, users, recovery_codes, sessions, refresh_tokens,
  invitations, support_grants, org_keys, signing_keys TO sotto_system;
GRANT SELECT, INSERT ON audit_log TO sotto_system;
