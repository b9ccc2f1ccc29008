-- Scheduled data-key rotation (docs/security.md, "Data-key rotation"): the maintenance task
-- re-encrypts an org's ciphertexts under its newest data key, in the system context, one batch of
-- rows at a time (SELECT … FOR UPDATE SKIP LOCKED, then UPDATE of the sealed column only). The
-- system role gets UPDATE on exactly those columns, nothing else; org_keys already allows the
-- UPDATE/DELETE that rotation and retirement need (0012), and orgs and users are writable by it (0001).
GRANT UPDATE (title_enc, live_speakers_enc) ON recordings TO sotto_system;
GRANT UPDATE (body_enc, speaker_names_enc, original_body_enc) ON transcripts TO sotto_system;
GRANT UPDATE (content_key_enc) ON recording_audio TO sotto_system;
GRANT UPDATE (content_key_enc) ON live_spools TO sotto_system;
GRANT UPDATE (title_enc) ON recording_archive TO sotto_system;
GRANT UPDATE (content_key_enc) ON org_exports TO sotto_system;
GRANT UPDATE (name_enc) ON api_tokens TO sotto_system;
-- Only the columns rotation reads: never the URL (or anything else an org configured).
GRANT SELECT (id, org_id, secret_enc, previous_secret_enc) ON webhooks TO sotto_system;
GRANT UPDATE (secret_enc, previous_secret_enc) ON webhooks TO sotto_system;
GRANT UPDATE (client_secret_enc) ON sso_connections TO sotto_system;

-- The data key version that seals each cold-archive object (the first bytes of the object's
-- header), recorded when it is archived: retirement counts it in SQL instead of reading every
-- object, and an object that cannot be read (volume not mounted, another SOTTO_ARCHIVE_DIR) no
-- longer looks unused. NULL: archived before this migration; rotation reads the object once and
-- fills it in, and retires nothing of the org while any object's version is unknown.
ALTER TABLE recording_archive ADD COLUMN object_key_version int;
GRANT UPDATE (object_key_version) ON recording_archive TO sotto_system;
