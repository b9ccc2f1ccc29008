-- The fence on a live recording's seal (docs/live.md, "Multiple nodes"). A node that starts
-- holding a live session (new, restored after a restart, or taken over from another node) takes
-- the next generation; the stop commits the recording (`live` → `queued`) only under the
-- generation it holds, so a node that stalled past its claim and woke up after another node took
-- the session over is refused, whichever of the two seals first.
ALTER TABLE recordings ADD COLUMN live_generation integer NOT NULL DEFAULT 0;
-- Which sealed blob is the recording's audio. NULL: the blob named by the recording id (uploads,
-- archive restores, everything sealed before this migration). A live stop seals under a fresh id
-- of its own and records it here in its fenced transaction, so a stale node's late write can only
-- ever land in its own blob (which it deletes, or the audio sweep does) and never replaces the
-- audio another node sealed and committed.
ALTER TABLE recording_audio ADD COLUMN blob_id uuid;
-- No grant or policy changes: the table grants and tenant policies of 0004 and 0007 cover both.
