-- Data lifecycle fixes (docs/lifecycle.md).

-- Retention remembers recordings it failed to archive (a damaged ciphertext, a missing blob) and
-- skips them until archive_next_try_at, backing off per failure: a few always-failing recordings
-- can no longer fill every batch and stall retention for every org.
ALTER TABLE recordings ADD COLUMN archive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE recordings ADD COLUMN archive_next_try_at timestamptz;

-- The database archive store writes a part in many short transactions (one per 1 MiB row) rather
-- than one long one; rows of a part are only readable once the last one is in and the part is
-- marked complete. An incomplete part has no archive row, so the orphan sweep removes it.
ALTER TABLE archive_objects ADD COLUMN complete boolean NOT NULL DEFAULT true;
-- Only the flag may change: stored bytes are never rewritten in place.
GRANT UPDATE (complete) ON archive_objects TO sotto_app;

-- Organization deletion deletes every API and worker token of the org in its first (shredding)
-- transaction, so nothing authenticates while the purge runs.
GRANT DELETE ON api_tokens, worker_tokens TO sotto_system;

-- Account deletion hands a departed member's archived recordings to the successor (policy
-- 'transfer'), like their active ones; only the owner column may change.
GRANT UPDATE (owner_id) ON recording_archive TO sotto_app;
