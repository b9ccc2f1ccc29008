-- Live recordings: audio streamed over WSS and transcribed while people talk (docs/live.md).
-- A live recording is an ordinary recording row from the start (same title encryption, same
-- visibility, same delete); `mode` says how its audio arrived. While it streams its status is
-- 'live'; on stop its audio is sealed and a normal job is queued ('live' → 'queued').
ALTER TABLE recordings ADD COLUMN mode text NOT NULL DEFAULT 'upload' CHECK (mode IN ('upload', 'live'));
ALTER TABLE recordings DROP CONSTRAINT recordings_status_check;
ALTER TABLE recordings ADD CONSTRAINT recordings_status_check
  CHECK (status IN ('live', 'queued', 'processing', 'done', 'failed'));
-- The per-org cap on concurrent live recordings counts these.
CREATE INDEX recordings_live_idx ON recordings (org_id) WHERE status = 'live';
