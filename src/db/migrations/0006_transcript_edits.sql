-- Transcript editing (speaker names, corrected segment text).
-- body_enc keeps holding the current text; the machine transcript is copied to
-- original_body_enc (encrypted under its own field, so the two ciphertexts cannot be swapped)
-- the first time a user edits, and never written again. revision counts edits: a PATCH names the
-- revision it was based on and is refused when another edit got there first.
ALTER TABLE transcripts ADD COLUMN original_body_enc bytea;
ALTER TABLE transcripts ADD COLUMN revision integer NOT NULL DEFAULT 0 CHECK (revision >= 0);
-- No grant changes: sotto_app already has SELECT/INSERT/UPDATE/DELETE on the whole table and
-- sotto_system SELECT; the tenant policy of 0004 covers the new columns.
