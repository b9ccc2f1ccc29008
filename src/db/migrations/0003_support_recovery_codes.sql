-- Platform support accounts (users.org_id NULL) can enrol TOTP too, so their recovery codes have
-- no org either. Such rows are invisible to sotto_app (the policy compares org_id with the
-- tenant) and are only read in the system context, like the support user's own sessions.
ALTER TABLE recovery_codes ALTER COLUMN org_id DROP NOT NULL;
