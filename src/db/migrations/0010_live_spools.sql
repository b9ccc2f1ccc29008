-- Live spools (docs/live.md, phase 2): every acknowledged frame of a live recording is appended,
-- encrypted, to <dataDir>/live/<org>/<recording>/<stream>.spool on the node that ingests it, so a
-- server restart or crash loses nothing. The spool's random content key lives here, wrapped by the
-- org's data key with AAD bound to this row (crypto-shredding the org's keys makes spools
-- unreadable). `touched_at` is renewed by the ingesting node while the session is in memory; the
-- resume-window sweep finalises (or fails) a recording whose spool has not been touched for longer.
CREATE TABLE live_spools (
  recording_id uuid PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  content_key_enc bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  touched_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX live_spools_touched_idx ON live_spools (touched_at);

SELECT sotto_enable_tenant_rls('live_spools');
GRANT SELECT, INSERT, UPDATE, DELETE ON live_spools TO sotto_app;
-- The resume-window sweep lists stale spools of every org (system context); it acts per org.
GRANT SELECT ON live_spools TO sotto_system;
