-- Audio at rest. Uploaded audio is sealed at upload (streaming, chunked AES-256-GCM) into a blob
-- file <dataDir>/audio/<org>/<recording>.bin under a random per-file content key. The key lives
-- here, wrapped by the org's data key with AAD bound to this row: crypto-shredding the org's
-- keys makes the audio unreadable too, and a blob moved to another recording cannot be opened.
-- The row exists while a job waits for the audio, and afterwards only if the org keeps audio.
CREATE TABLE recording_audio (
  recording_id uuid PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- Sniffed from the bytes at upload, never taken from the client.
  content_type text NOT NULL CHECK (content_type ~ '^audio/[a-z0-9.+-]+$'),
  plain_size bigint NOT NULL CHECK (plain_size >= 0),
  chunk_size integer NOT NULL CHECK (chunk_size > 0),
  content_key_enc bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

SELECT sotto_enable_tenant_rls('recording_audio');
GRANT SELECT, INSERT, DELETE ON recording_audio TO sotto_app;
-- The start-up sweep lists which blobs still have a row (system context, every org).
GRANT SELECT ON recording_audio TO sotto_system;

-- Jobs now name their recording only: the audio is found through recording_audio. The column
-- stays (nullable) for jobs queued before this migration, whose plain staged file is still used.
ALTER TABLE recording_jobs ALTER COLUMN audio_path DROP NOT NULL;
