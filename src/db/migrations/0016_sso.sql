-- OIDC single sign-on per organization (docs/sso.md). One connection per org for now (UNIQUE
-- org_id); `kind` leaves room for SAML beside it.
CREATE TABLE sso_connections (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL UNIQUE REFERENCES orgs (id) ON DELETE CASCADE,
  kind text NOT NULL DEFAULT 'oidc' CHECK (kind IN ('oidc')),
  issuer text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 2048),
  client_id text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 512),
  -- The client secret, sealed with the org's data key and bound to this row and column
  -- (KeyService, AAD sotto/field/v1|org|sso_connections|id|client_secret). Never returned.
  client_secret_enc bytea NOT NULL,
  -- Lower-case email domains whose verified addresses may sign in (and be provisioned) here.
  allowed_domains text[] NOT NULL CHECK (cardinality(allowed_domains) BETWEEN 1 AND 50),
  -- Optional ID-token claim whose value maps to an org role through role_mapping
  -- ({"<claim value>": "admin" | "member"}); anything unmapped provisions a member.
  role_claim text CHECK (role_claim IS NULL OR length(role_claim) BETWEEN 1 AND 100),
  role_mapping jsonb NOT NULL DEFAULT '{}'::jsonb,
  require_sso boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Pre-tenant sign-in lookup by email domain ("Continue with SSO" with a work email).
CREATE INDEX sso_connections_domains_idx ON sso_connections USING gin (allowed_domains);

SELECT sotto_enable_tenant_rls('sso_connections');
GRANT SELECT, INSERT, UPDATE, DELETE ON sso_connections TO sotto_app;
-- The system context reads a connection to start and finish a sign-in (before any session) and
-- checks require_sso during password login.
GRANT SELECT ON sso_connections TO sotto_system;

-- Sign-ins in flight: state, nonce and PKCE verifier of one authorization request, kept
-- server-side for a few minutes and consumed once (DELETE … RETURNING). The browser holds only a
-- random handle in a __Host- cookie; the row is keyed by its SHA-256, so the table alone cannot
-- be used to finish anyone's sign-in, and the cookie binds the callback to the browser that
-- started it (no login CSRF). Only the system context touches it (no tenant exists yet).
CREATE TABLE sso_login_states (
  handle_hash text PRIMARY KEY CHECK (handle_hash ~ '^[0-9a-f]{64}$'),
  connection_id uuid NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  state text NOT NULL,
  nonce text NOT NULL,
  code_verifier text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX sso_login_states_expiry_idx ON sso_login_states (expires_at);
SELECT sotto_enable_tenant_rls('sso_login_states');
GRANT SELECT, INSERT, DELETE ON sso_login_states TO sotto_system;
