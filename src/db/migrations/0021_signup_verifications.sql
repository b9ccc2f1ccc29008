-- Self-service signup waits for the email address to be proven (docs/security.md, "Signup"):
-- POST /api/v1/auth/signup answers alike for every address and, for one without an account,
-- keeps the request here; the organization and its owner are created only when the emailed link
-- comes back (POST /api/v1/auth/signup/verify), so nobody can act before verifying. Keyed by the
-- SHA-256 of the link's token (the token itself is never stored). There is no org yet, so no
-- RLS: the system context alone reads and writes it. Rows die at verification or expiry.
CREATE TABLE signup_verifications (
  token_hash text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  org_name text NOT NULL CHECK (length(org_name) BETWEEN 1 AND 200),
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX signup_verifications_email_idx ON signup_verifications (email);
CREATE INDEX signup_verifications_expiry_idx ON signup_verifications (expires_at);
GRANT SELECT, INSERT, DELETE ON signup_verifications TO sotto_system;
