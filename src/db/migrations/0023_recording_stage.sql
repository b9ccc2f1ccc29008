-- What a transcription job is doing now (docs/panel.md, "Progress"): the stage the worker last
-- reported (decoding the audio, transcribing, identifying speakers, saving the transcript) beside
-- its fraction in `progress`, and when the current attempt started, from which the panel shows
-- the elapsed time and an estimate of the time left. Both are only meaningful while the status
-- is 'processing' (the API shows 'queued' for a queued recording and no stage once it ended).
ALTER TABLE recordings ADD COLUMN stage text
  CHECK (stage IN ('decoding', 'transcribing', 'speakers', 'saving'));
ALTER TABLE recordings ADD COLUMN started_at timestamptz;
-- No grant or policy changes: the tenant policy of 0004 covers the new columns.
