-- Encrypted search index (docs/search.md): one row per recording holding the keyed-hash tokens of
-- its title and transcript — HMAC-SHA256 under a per-org index key derived from the org's
-- key-encryption key, truncated to 32 bits — never a word. Word prefixes and word pairs, so
-- prefix and "phrase" queries narrow to candidates that the search then decrypts to confirm.
-- doc_enc is the recording's searchable text alone (title, and each segment's id, start and text,
-- without word timings: about a tenth of the transcript), sealed under the org's data key like
-- every other field: candidates are confirmed and cut into snippets from it instead of decrypting
-- and parsing the whole transcript.
-- `scheme` is the tokenisation version: a row of another scheme counts as not indexed (searched
-- by decrypting, and rebuilt by the backfill task). The row goes with its recording (cascade:
-- deletion, archiving) and with its org (purge); shredding the org's KEK leaves any copy of the
-- tokens unlinkable to words.
CREATE TABLE search_index (
  recording_id uuid PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  scheme smallint NOT NULL CHECK (scheme > 0),
  tokens integer[] NOT NULL,
  doc_enc bytea NOT NULL,
  indexed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX search_index_tokens_idx ON search_index USING gin (tokens);
SELECT sotto_enable_tenant_rls('search_index');
GRANT SELECT, INSERT, UPDATE, DELETE ON search_index TO sotto_app;
-- The backfill task lists recordings not yet indexed across orgs (it indexes each in its tenant).
GRANT SELECT ON search_index TO sotto_system;

-- The token lookup for tenant queries. Under row-level security PostgreSQL uses a user condition
-- as an index condition only when its operator is LEAKPROOF, and array containment (`@>`) is
-- not: a tenant query on search_index would read every token array of the org (stored out of
-- line, tens of kilobytes each) instead of the GIN index. This function runs as its owner (the
-- migration role) so the index can be used, and pins the rows to the caller's tenant itself —
-- the same condition as the tenant policy, from the transaction's app.org_id, which the caller
-- cannot choose. It returns recording ids only. If the owner is itself subject to the forced
-- policy (not a superuser, no BYPASSRLS), the answer is the same, only without the index.
CREATE FUNCTION sotto_search_hits(q integer[], s smallint) RETURNS TABLE (recording_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT i.recording_id FROM public.search_index i
   WHERE i.org_id = nullif(current_setting('app.org_id', true), '')::uuid
     AND i.scheme = s AND i.tokens @> q
$$;
REVOKE ALL ON FUNCTION sotto_search_hits(integer[], smallint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sotto_search_hits(integer[], smallint) TO sotto_app;
