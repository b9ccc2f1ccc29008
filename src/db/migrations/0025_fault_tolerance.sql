-- Issue 17 (fault tolerance).
--
-- A job whose lease lapsed — its server or worker was killed, its machine lost power — is claimed
-- again without using an attempt: the crash was not the recording's fault (a failed run still
-- counts). lease_lapses counts those reclaims instead, with a bound of its own
-- (SOTTO_JOB_MAX_LEASE_LAPSES), so a recording that crashes its worker every time cannot loop for
-- ever. The tenant policy of 0004 covers the new column.
ALTER TABLE recording_jobs ADD COLUMN lease_lapses integer NOT NULL DEFAULT 0 CHECK (lease_lapses >= 0);

-- Every `sotto serve` node says which public URL it issues tokens for, at start and with each
-- heartbeat. Nodes that disagree reject each other's tokens (401) behind a load balancer; a node
-- that sees another URL among the nodes seen recently logs it and /readyz names it. Platform
-- table: no org, nothing confidential (the URL users reach).
CREATE TABLE server_nodes (
  node_id uuid PRIMARY KEY,
  public_url text NOT NULL CHECK (length(public_url) <= 2048),
  started_at timestamptz NOT NULL,
  seen_at timestamptz NOT NULL
);
CREATE INDEX server_nodes_seen_idx ON server_nodes (seen_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON server_nodes TO sotto_system;
