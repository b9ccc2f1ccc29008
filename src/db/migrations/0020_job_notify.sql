-- Jobs start at once when queued: a job that becomes due (a new upload, a finished live
-- recording, a job handed back) notifies the channel `sotto_recording_jobs`, and every node's
-- in-process worker (LISTEN on PostgreSQL, PGlite's own listener in the embedded case) claims
-- without waiting for its next poll. NOTIFY is delivered at COMMIT and never for a rolled-back
-- transaction; several due jobs in one transaction notify once. Delayed retries (run_after in
-- the future) do not notify: the poll takes them when due. The payload is empty on purpose: the
-- channel is shared by every tenant, so it carries no ids.
CREATE FUNCTION recording_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A few seconds of slack: run_after may come from the application's clock, not the database's.
  IF NEW.lease_id IS NULL AND NEW.run_after <= now() + interval '5 seconds' THEN
    PERFORM pg_notify('sotto_recording_jobs', '');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER recording_jobs_notify
  AFTER INSERT OR UPDATE OF lease_id, run_after ON recording_jobs
  FOR EACH ROW EXECUTE FUNCTION recording_jobs_notify();
