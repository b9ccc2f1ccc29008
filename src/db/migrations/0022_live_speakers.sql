-- The participant labels a live recording was streamed with ("Dr Rossi"), one per channel of its
-- sealed WAV, in channel order (docs/live.md, "Speaker names"). Written by the stop, read once by
-- the job that stores the transcript (they become its speaker names), then cleared. Encrypted
-- JSON (keys service, AAD bound to the row and field): names are personal data.
ALTER TABLE recordings ADD COLUMN live_speakers_enc bytea;
-- No grant or policy changes: the tenant policy of 0004 covers the new column.
