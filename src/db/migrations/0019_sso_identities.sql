-- SSO accounts are bound to the IdP's subject, not to an email address (docs/sso.md, "Accounts
-- and identity links"). A sign-in looks up (connection, subject) first; an email alone never
-- opens an existing account: an existing password/invitation account is linked only after its
-- owner proves the password (+ TOTP) once. Changing a connection's issuer, SAML entity id or
-- certificates deletes its links (a new IdP must re-link).
CREATE TABLE sso_identities (
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  connection_id uuid NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
  issuer text NOT NULL CHECK (length(issuer) BETWEEN 1 AND 2048),
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 1024),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  last_login_at timestamptz NOT NULL,
  PRIMARY KEY (connection_id, subject),
  UNIQUE (connection_id, user_id)
);
CREATE INDEX sso_identities_user_idx ON sso_identities (org_id, user_id);
SELECT sotto_enable_tenant_rls('sso_identities');
GRANT SELECT, INSERT, UPDATE, DELETE ON sso_identities TO sotto_app;
-- The sign-in reads a link before any tenant session exists.
GRANT SELECT ON sso_identities TO sotto_system;

-- A link waiting for the account's password: the IdP proved (connection, subject) and the email
-- matched an existing account, but nothing opens until its owner proves the password (+ TOTP).
-- Single use (DELETE … RETURNING), short-lived, keyed by the SHA-256 of a random handle that only
-- the browser that ran the sign-in holds (the __Host-sotto_sso cookie). System context only.
CREATE TABLE sso_pending_links (
  handle_hash text PRIMARY KEY CHECK (handle_hash ~ '^[0-9a-f]{64}$'),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  connection_id uuid NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
  issuer text NOT NULL,
  subject text NOT NULL,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  method text NOT NULL CHECK (method IN ('oidc', 'saml')),
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX sso_pending_links_expiry_idx ON sso_pending_links (expires_at);
SELECT sotto_enable_tenant_rls('sso_pending_links');
GRANT SELECT, INSERT, DELETE ON sso_pending_links TO sotto_system;

-- Whether the account has a password of its own (false for just-in-time SSO accounts, whose
-- random password was discarded): re-authentication then asks for a recent SSO sign-in instead.
ALTER TABLE users ADD COLUMN password_set boolean NOT NULL DEFAULT true;
-- How a session began ('password' covers every non-SSO way in: password, invitation, signup).
ALTER TABLE sessions ADD COLUMN auth_method text NOT NULL DEFAULT 'password'
  CHECK (auth_method IN ('password', 'sso'));
