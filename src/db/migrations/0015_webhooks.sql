-- Webhooks: an org's HTTPS endpoints told about recording events (docs/webhooks.md). Payloads
-- carry ids, statuses and timestamps only (never transcript text or titles); the receiver
-- fetches content with an API token. Signing secrets are encrypted with the org's data key; the
-- previous secret is kept for a grace period after a rotation (both signatures are sent).
CREATE TABLE webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  url text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
  events text[] NOT NULL CHECK (
    cardinality(events) BETWEEN 1 AND 3
    AND events <@ ARRAY['recording.done', 'recording.failed', 'recording.deleted']::text[]
  ),
  secret_enc bytea NOT NULL,
  previous_secret_enc bytea,
  rotated_at timestamptz,
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);
CREATE INDEX webhooks_org_idx ON webhooks (org_id, created_at);
SELECT sotto_enable_tenant_rls('webhooks');
GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks TO sotto_app;

-- One row per (event, webhook): an outbox written in the same transaction as the event, then
-- sent by the delivery loop with retries and exponential backoff.
CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
  webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  last_status_code integer,
  last_error text CHECK (length(last_error) <= 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_hook_idx ON webhook_deliveries (webhook_id, created_at);
SELECT sotto_enable_tenant_rls('webhook_deliveries');
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO sotto_app;
-- The delivery loop finds due deliveries of every org (system context), then acts per org.
GRANT SELECT, UPDATE ON webhook_deliveries TO sotto_system;
