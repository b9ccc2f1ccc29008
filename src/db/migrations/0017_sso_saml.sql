-- SAML 2.0 single sign-on beside OIDC (docs/sso.md). A connection is now of one kind: 'oidc'
-- (issuer, client id and sealed secret) or 'saml' (issuer = the IdP's entity id, its HTTP-Redirect
-- SSO URL and signing certificates, all parsed from the IdP metadata an admin uploaded).
ALTER TABLE sso_connections DROP CONSTRAINT IF EXISTS sso_connections_kind_check;
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_kind_check CHECK (kind IN ('oidc', 'saml'));
ALTER TABLE sso_connections ALTER COLUMN client_id DROP NOT NULL;
ALTER TABLE sso_connections ALTER COLUMN client_secret_enc DROP NOT NULL;
ALTER TABLE sso_connections ADD COLUMN saml_sso_url text CHECK (length(saml_sso_url) BETWEEN 1 AND 2048);
-- PEM certificates (public): an assertion must verify against one of these and nothing else.
ALTER TABLE sso_connections ADD COLUMN saml_certs text[];
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_kind_fields CHECK (
  (kind = 'oidc' AND client_id IS NOT NULL AND client_secret_enc IS NOT NULL)
  OR (kind = 'saml' AND saml_sso_url IS NOT NULL AND cardinality(saml_certs) BETWEEN 1 AND 10)
);

-- Assertion ids already used to sign in, kept until the assertion's NotOnOrAfter (plus skew):
-- the same assertion is never accepted twice, even inside its validity window. Only the system
-- context touches it (the ACS runs before any session exists). Expired rows go as new ones
-- arrive and in the scheduler's sweep.
CREATE TABLE sso_saml_assertions (
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  assertion_id text NOT NULL CHECK (length(assertion_id) BETWEEN 1 AND 256),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, assertion_id)
);
CREATE INDEX sso_saml_assertions_expiry_idx ON sso_saml_assertions (expires_at);
SELECT sotto_enable_tenant_rls('sso_saml_assertions');
GRANT SELECT, INSERT, DELETE ON sso_saml_assertions TO sotto_system;
