import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import {
  INCIDENT_MAX_ENTRIES,
  auditInWindow,
  orgsByIds,
  peopleOf,
  type IncidentPerson,
} from '../../repositories/operations/incident.repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface IncidentActor {
  id: string | null;
  kind: string;
  /** Email of a user actor still on record (a deleted account leaves only its id). */
  email: string | null;
  actions: Record<string, number>;
}

export interface IncidentOrg {
  orgId: string;
  name: string | null;
  slug: string | null;
  entries: number;
  first: Date;
  last: Date;
  actors: IncidentActor[];
  /** Users the entries acted on (targets), with their email when still on record. */
  usersTouched: { id: string; email: string | null; actions: string[] }[];
  recordingsTouched: { id: string; actions: string[] }[];
  /** Other targets by type (sessions, tokens, webhooks…): ids. */
  otherTargets: Record<string, string[]>;
  owners: { email: string; name: string }[];
  notice: string;
}

export interface IncidentReport {
  from: Date;
  to: Date;
  orgId: string | undefined;
  entries: number;
  /** Platform-chain entries (key rotations, support accounts) in the window. */
  platformEntries: number;
  orgs: IncidentOrg[];
}

/**
 * `sotto incident report`: who touched which organizations, users and recordings in a time
 * window, from the audit log — the record an operator has after a suspected breach — and a draft
 * notice per affected org for its owners. Reads in the system context (an operator command, like
 * `sotto audit verify`); the audit log holds ids, roles and counts, never content, and so does
 * the report. Nothing is sent: the drafts are for a person to check and send.
 */
export class IncidentService {
  constructor(
    private readonly db: Database,
    private readonly contact: string,
  ) {}

  async report(opts: { from: Date; to: Date; orgId?: string | undefined }): Promise<IncidentReport> {
    if (Number.isNaN(opts.from.getTime()) || Number.isNaN(opts.to.getTime()) || opts.from >= opts.to)
      throw new AppError('validation_failed', '--from must be a date before --to');
    if (opts.orgId !== undefined && !UUID.test(opts.orgId))
      throw new AppError('validation_failed', '--org: not an organization id');
    const orgFilter = opts.orgId?.toLowerCase();
    return withSystem(this.db, async (tx) => {
      const rows = await auditInWindow(tx, opts.from, opts.to, orgFilter);
      if (rows.length > INCIDENT_MAX_ENTRIES)
        throw new AppError(
          'validation_failed',
          `more than ${INCIDENT_MAX_ENTRIES} audit entries in the window: narrow it (--from/--to) or pick one --org`,
        );
      const orgIds = [...new Set(rows.flatMap((r) => (r.orgId ? [r.orgId] : [])))];
      const userIds = [
        ...new Set(
          rows.flatMap((r) => [
            ...(r.actorId && UUID.test(r.actorId) ? [r.actorId] : []),
            ...(r.targetType === 'user' && r.targetId && UUID.test(r.targetId) ? [r.targetId] : []),
          ]),
        ),
      ];
      const [orgs, people] = await Promise.all([orgsByIds(tx, orgIds), peopleOf(tx, userIds, orgIds)]);
      const byId = new Map(people.map((p) => [p.id, p]));
      const orgReports = orgIds.map((orgId) => {
        const org = orgs.find((o) => o.id === orgId);
        return this.orgReport(
          orgId,
          org,
          rows.filter((r) => r.orgId === orgId),
          byId,
          people.filter((p) => p.orgId === orgId && p.role === 'owner'),
          opts,
        );
      });
      return {
        from: opts.from,
        to: opts.to,
        orgId: orgFilter,
        entries: rows.length,
        platformEntries: rows.filter((r) => r.orgId === null).length,
        orgs: orgReports,
      };
    });
  }

  private orgReport(
    orgId: string,
    org: { name: string; slug: string } | undefined,
    rows: Awaited<ReturnType<typeof auditInWindow>>,
    people: Map<string, IncidentPerson>,
    owners: IncidentPerson[],
    window: { from: Date; to: Date },
  ): IncidentOrg {
    const actors = new Map<string, IncidentActor>();
    const users = new Map<string, Set<string>>();
    const recordings = new Map<string, Set<string>>();
    const other: Record<string, Set<string>> = {};
    for (const r of rows) {
      const key = `${r.actorKind}:${r.actorId ?? '-'}`;
      const actor = actors.get(key) ?? {
        id: r.actorId,
        kind: r.actorKind,
        email: (r.actorId && people.get(r.actorId)?.email) || null,
        actions: {},
      };
      actor.actions[r.action] = (actor.actions[r.action] ?? 0) + 1;
      actors.set(key, actor);
      if (!r.targetId || !r.targetType) continue;
      const bucket = r.targetType === 'user' ? users : r.targetType === 'recording' ? recordings : undefined;
      if (bucket) bucket.set(r.targetId, (bucket.get(r.targetId) ?? new Set()).add(r.action));
      else (other[r.targetType] ??= new Set()).add(r.targetId);
    }
    const report: Omit<IncidentOrg, 'notice'> = {
      orgId,
      name: org?.name ?? null,
      slug: org?.slug ?? null,
      entries: rows.length,
      first: rows[0]!.at,
      last: rows.at(-1)!.at,
      actors: [...actors.values()],
      usersTouched: [...users].map(([id, a]) => ({
        id,
        email: people.get(id)?.email ?? null,
        actions: [...a],
      })),
      recordingsTouched: [...recordings].map(([id, a]) => ({ id, actions: [...a] })),
      otherTargets: Object.fromEntries(Object.entries(other).map(([k, v]) => [k, [...v]])),
      owners: owners.map((o) => ({ email: o.email, name: o.name })),
    };
    return { ...report, notice: draftNotice(report, window, this.contact) };
  }
}

/** A plain-text draft for the org's owners: facts from the log, ids only, nothing of content. */
function draftNotice(
  r: Omit<IncidentOrg, 'notice'>,
  window: { from: Date; to: Date },
  contact: string,
): string {
  const to = r.owners.length
    ? r.owners.map((o) => `${o.name} <${o.email}>`).join(', ')
    : '(no owner on record)';
  const { subject, text } = noticeMessage(r, window, contact);
  return [`To: ${to}`, `Subject: ${subject}`, '', text].join('\n');
}

/** The notice's subject and body, as drafted by `report` and sent by `sotto incident notify`. */
export function noticeMessage(
  r: Omit<IncidentOrg, 'notice'>,
  window: { from: Date; to: Date },
  contact: string,
): { subject: string; text: string } {
  const actions = [...new Set(r.actors.flatMap((a) => Object.keys(a.actions)))].sort();
  const subject = `Security notice for ${r.name ?? r.orgId}`;
  const text = [
    `We are investigating a security incident on our Sotto service. Our audit log shows activity in your`,
    `organization ${r.name ?? ''} (${r.orgId}) between ${window.from.toISOString()} and ${window.to.toISOString()}`,
    `that falls within the period under investigation: ${r.entries} recorded action(s) by ${r.actors.length}`,
    `account(s) or process(es), from ${r.first.toISOString()} to ${r.last.toISOString()}.`,
    '',
    `Recordings involved: ${r.recordingsTouched.length}${r.recordingsTouched.length ? ` (${r.recordingsTouched.map((x) => x.id).join(', ')})` : ''}`,
    `User accounts involved: ${r.usersTouched.length}${r.usersTouched.length ? ` (${r.usersTouched.map((x) => x.email ?? x.id).join(', ')})` : ''}`,
    `Kinds of action: ${actions.join(', ') || 'none'}`,
    '',
    'This does not by itself mean your data was disclosed: recordings, transcripts and titles are',
    'encrypted at rest with keys specific to your organization. We will tell you what we learn.',
    'Meanwhile we recommend that you review your audit log (Organization → Audit), sign out devices',
    'you do not recognise, and revoke API tokens and worker tokens you do not need.',
    '',
    `Questions: ${contact}`,
  ].join('\n');
  return { subject, text };
}
