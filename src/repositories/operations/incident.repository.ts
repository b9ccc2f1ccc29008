import type { Queryable } from '../../db/database.js';

/** Audit entries and the people behind them, read for an incident report (system context). */
export interface IncidentAuditRow {
  orgId: string | null;
  at: Date;
  actorId: string | null;
  actorKind: string;
  action: string;
  targetType: string | null;
  targetId: string | null;
}

export interface IncidentPerson {
  id: string;
  orgId: string | null;
  email: string;
  name: string;
  role: string | null;
}

/** Bounded: an incident window is hours or days; a runaway window must not exhaust memory. */
export const INCIDENT_MAX_ENTRIES = 100_000;

export async function auditInWindow(
  tx: Queryable,
  from: Date,
  to: Date,
  orgId: string | undefined,
): Promise<IncidentAuditRow[]> {
  const { rows } = await tx.query<{
    org_id: string | null;
    at: Date | string;
    actor_id: string | null;
    actor_kind: string;
    action: string;
    target_type: string | null;
    target_id: string | null;
  }>(
    // Not the notices themselves: a window that includes "now" would otherwise count an earlier
    // notice as activity, and a later overlapping window would notify the org about its notice.
    `SELECT org_id, at, actor_id, actor_kind, action, target_type, target_id FROM audit_log
      WHERE at >= $1 AND at < $2 AND ($3::uuid IS NULL OR org_id = $3::uuid)
        AND action <> '${INCIDENT_NOTIFIED}'
      ORDER BY at, seq LIMIT ${INCIDENT_MAX_ENTRIES + 1}`,
    [from, to, orgId ?? null],
  );
  return rows.map((r) => ({
    orgId: r.org_id,
    at: new Date(r.at),
    actorId: r.actor_id,
    actorKind: r.actor_kind,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
  }));
}

export async function orgsByIds(
  tx: Queryable,
  ids: string[],
): Promise<{ id: string; name: string; slug: string }[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.query<{ id: string; name: string; slug: string }>(
    'SELECT id, name, slug FROM orgs WHERE id = ANY($1::uuid[])',
    [ids],
  );
  return rows;
}

/** Users by id (actors and targets), and every owner of the given orgs (the notice's recipients). */
export async function peopleOf(
  tx: Queryable,
  userIds: string[],
  ownerOrgIds: string[],
): Promise<IncidentPerson[]> {
  const { rows } = await tx.query<{
    id: string;
    org_id: string | null;
    email: string;
    name: string;
    role: string | null;
  }>(
    `SELECT id, org_id, email, name, role FROM users
      WHERE id = ANY($1::uuid[]) OR (role = 'owner' AND org_id = ANY($2::uuid[]))`,
    [userIds, ownerOrgIds],
  );
  return rows.map((r) => ({ id: r.id, orgId: r.org_id, email: r.email, name: r.name, role: r.role }));
}

/** The audit action `sotto incident notify` records in each notified org's chain. */
export const INCIDENT_NOTIFIED = 'incident.notified';

/**
 * Orgs among `orgIds` whose chain already records a notice for exactly this window (the refusal
 * to send the same notice twice; `--force` skips it).
 */
export async function orgsNotifiedFor(
  tx: Queryable,
  orgIds: string[],
  from: Date,
  to: Date,
): Promise<Set<string>> {
  if (orgIds.length === 0) return new Set();
  const { rows } = await tx.query<{ org_id: string }>(
    `SELECT DISTINCT org_id FROM audit_log
      WHERE action = $1 AND org_id = ANY($2::uuid[])
        AND details->>'windowFrom' = $3 AND details->>'windowTo' = $4`,
    [INCIDENT_NOTIFIED, orgIds, from.toISOString(), to.toISOString()],
  );
  return new Set(rows.map((r) => r.org_id));
}
