-- Recordings, their transcripts and the transcription job queue.
-- Titles and transcript bodies are encrypted in the application (keys service, AAD bound to the
-- table, row and field): a database dump shows ciphertext only.
CREATE TABLE recordings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title_enc bytea,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'done', 'failed')),
  progress real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
  error_code text,
  language text CHECK (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'),
  speakers_hint integer CHECK (speakers_hint BETWEEN 1 AND 20),
  duration_seconds double precision,
  channels integer,
  engine text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
CREATE INDEX recordings_org_created_idx ON recordings (org_id, created_at DESC, id DESC);
CREATE INDEX recordings_owner_idx ON recordings (owner_id);

CREATE TABLE transcripts (
  recording_id uuid PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- {segments, speakers} as encrypted JSON.
  body_enc bytea NOT NULL,
  -- {label: display name} set by users, encrypted JSON.
  speaker_names_enc bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The queue: one row per recording waiting for (or held by) a worker. Claimed with
-- FOR UPDATE SKIP LOCKED; a worker holds a job through a lease it renews while it works, so a
-- worker that dies leaves a lease that expires and the job is claimed again. lease_id makes the
-- completion conditional: a worker whose lease was taken over cannot write a second result.
CREATE TABLE recording_jobs (
  recording_id uuid PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  -- Local file holding the uploaded audio until the job ends (deleted on success and failure).
  audio_path text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  run_after timestamptz NOT NULL DEFAULT now(),
  lease_id uuid,
  lease_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recording_jobs_due_idx ON recording_jobs (run_after);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['recordings', 'transcripts', 'recording_jobs'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
      USING (org_id = nullif(current_setting('app.org_id', true), '')::uuid)
      WITH CHECK (org_id = nullif(current_setting('app.org_id', true), '')::uuid)$p$, t);
  END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON recordings, transcripts, recording_jobs TO sotto_app;
-- The worker claims jobs across orgs (system context); results are written under the job's org.
GRANT SELECT, UPDATE, DELETE ON recordings, recording_jobs TO sotto_system;
GRANT SELECT ON transcripts TO sotto_system;
