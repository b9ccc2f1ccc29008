-- Data lifecycle (docs/lifecycle.md): a maintenance scheduler shared by every node, and the cold
-- archive that retention moves old recordings into.

-- One row per periodic maintenance task. A node runs a task only after claiming it with one
-- atomic UPDATE (next_run_at due, no live lock), so with several nodes exactly one runs it per
-- interval. locked_until bounds how long a crashed node keeps a task. Platform table: no org.
CREATE TABLE scheduled_tasks (
  name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  next_run_at timestamptz NOT NULL,
  locked_until timestamptz,
  last_run_at timestamptz,
  last_error text CHECK (length(last_error) <= 500)
);
GRANT SELECT, INSERT, UPDATE ON scheduled_tasks TO sotto_system;

-- Archived recordings. The content is one sealed object per recording (plus the kept audio's
-- already-sealed blob) in the archive store; this row lists it. The title is re-encrypted under
-- this row (AAD: recording_archive/<id>/title) so the list can show it. Content hashes are of
-- the sealed bytes, never of plaintext.
CREATE TABLE recording_archive (
  id uuid PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  recording_id uuid NOT NULL,
  -- No foreign key: the owner may leave the org while the recording sleeps here.
  owner_id uuid NOT NULL,
  title_enc bytea,
  recording_created_at timestamptz NOT NULL,
  archived_at timestamptz NOT NULL,
  archived_by_policy boolean NOT NULL DEFAULT true,
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
  audio_size_bytes bigint CHECK (audio_size_bytes >= 0),
  audio_sha256 text CHECK (audio_sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- A recording is archived at most once: two nodes racing on it cannot both commit.
  UNIQUE (org_id, recording_id)
);
CREATE INDEX recording_archive_list_idx ON recording_archive (org_id, archived_at DESC, id DESC);
SELECT sotto_enable_tenant_rls('recording_archive');
GRANT SELECT, INSERT, DELETE ON recording_archive TO sotto_app;
-- The orphan sweep lists which objects still have a row (system context, every org).
GRANT SELECT ON recording_archive TO sotto_system;

-- The database archive store (SOTTO_ARCHIVE_STORE=database, for several nodes without a shared
-- disk): sealed parts in 1 MiB rows.
CREATE TABLE archive_objects (
  archive_id uuid NOT NULL,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  part text NOT NULL CHECK (part IN ('object', 'audio')),
  seq integer NOT NULL CHECK (seq >= 0),
  data bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (archive_id, part, seq)
);
CREATE INDEX archive_objects_org_idx ON archive_objects (org_id);
SELECT sotto_enable_tenant_rls('archive_objects');
GRANT SELECT, INSERT, DELETE ON archive_objects TO sotto_app;
GRANT SELECT ON archive_objects TO sotto_system;

-- A restored recording gets a fresh retention window (counted from here, not from created_at),
-- otherwise the next retention run would archive it again at once.
ALTER TABLE recordings ADD COLUMN restored_at timestamptz;
CREATE INDEX recordings_retention_idx ON recordings (org_id, created_at) WHERE status IN ('done', 'failed');
