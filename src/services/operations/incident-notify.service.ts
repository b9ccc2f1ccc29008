import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import { INCIDENT_NOTIFIED, orgsNotifiedFor } from '../../repositories/operations/incident.repository.js';
import type { Mailer } from '../../adapters/network/mail.adapter.js';
import type { AuditService } from './audit.service.js';
import { noticeMessage, type IncidentService } from './incident.service.js';

export type NotifyOutcome =
  /** Sent to every owner (or, in a dry run, would be). */
  | 'sent'
  | 'would_send'
  /** Some owners got it, some did not: the org is recorded as notified; `--force --org` resends. */
  | 'partly_sent'
  /**
   * Sent (to some or all owners) but the audit entry could not be recorded: a re-run of this
   * window would send it again, so the operator is told to leave this org out of one.
   */
  | 'sent_unrecorded'
  | 'failed'
  /** This exact window was already notified to the org (its audit chain says so); --force resends. */
  | 'already_notified'
  | 'no_owner';

export interface OrgNotifyResult {
  orgId: string;
  name: string | null;
  outcome: NotifyOutcome;
  recipients: string[];
  sent: number;
  failed: number;
}

export interface NotifyOptions {
  from: Date;
  to: Date;
  orgId?: string | undefined;
  dryRun?: boolean | undefined;
  force?: boolean | undefined;
}

// An org name is chosen by its admins: keep line breaks and bidi overrides out of a mail header.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it removes
const HEADER_UNSAFE = /[\u0000-\u001f\u007f\u0085\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+/g;

/**
 * `sotto incident notify`: sends each affected org's drafted notice (the same text `sotto
 * incident report` shows) to its owners over SMTP, one message per owner, and records
 * `incident.notified` in that org's audit chain with the window and counts only — never the
 * text or the addresses. The chain is also what refuses a second notice for the same window.
 */
export class IncidentNotifyService {
  constructor(
    private readonly db: Database,
    private readonly incidents: Pick<IncidentService, 'report'>,
    private readonly audit: Pick<AuditService, 'recordStandalone'>,
    private readonly mailer: Pick<Mailer, 'enabled' | 'send'>,
    private readonly contact: string,
  ) {}

  async notify(opts: NotifyOptions): Promise<OrgNotifyResult[]> {
    if (!opts.dryRun && !this.mailer.enabled)
      throw new AppError(
        'validation_failed',
        'SOTTO_SMTP_URL is not set: nothing can be sent (try --dry-run)',
      );
    const report = await this.incidents.report(opts);
    const window = { from: report.from, to: report.to };
    const done = opts.force
      ? new Set<string>()
      : await withSystem(this.db, (tx) =>
          orgsNotifiedFor(
            tx,
            report.orgs.map((o) => o.orgId),
            window.from,
            window.to,
          ),
        );
    const results: OrgNotifyResult[] = [];
    for (const org of report.orgs) {
      const recipients = org.owners.map((o) => o.email);
      const base = { orgId: org.orgId, name: org.name, recipients, sent: 0, failed: 0 };
      if (recipients.length === 0) {
        results.push({ ...base, outcome: 'no_owner' });
        continue;
      }
      if (done.has(org.orgId)) {
        results.push({ ...base, outcome: 'already_notified' });
        continue;
      }
      if (opts.dryRun) {
        results.push({ ...base, outcome: 'would_send' });
        continue;
      }
      const { subject, text } = noticeMessage(org, window, this.contact);
      let sent = 0;
      for (const to of recipients) {
        // One owner's unreachable mailbox must not keep the notice from the others.
        try {
          await this.mailer.send({ to, subject: subject.replace(HEADER_UNSAFE, ' '), text });
          sent++;
        } catch {
          // Counted and reported below; the SMTP error may quote the address, so it is not logged.
        }
      }
      const failed = recipients.length - sent;
      let recorded = true;
      if (sent > 0) {
        try {
          await this.audit.recordStandalone({
            orgId: org.orgId,
            actorId: null,
            actorKind: 'system',
            action: INCIDENT_NOTIFIED,
            targetType: 'org',
            targetId: org.orgId,
            details: {
              windowFrom: window.from.toISOString(),
              windowTo: window.to.toISOString(),
              recipients: recipients.length,
              sent,
              failed,
              entries: org.entries,
              recordings: org.recordingsTouched.length,
              users: org.usersTouched.length,
              forced: Boolean(opts.force),
            },
          });
        } catch {
          // The mails are out: the other orgs still get theirs, and the operator must learn which
          // org has no record (the database error says nothing the operator needs here).
          recorded = false;
        }
      }
      results.push({
        ...base,
        sent,
        failed,
        outcome: !recorded ? 'sent_unrecorded' : failed === 0 ? 'sent' : sent > 0 ? 'partly_sent' : 'failed',
      });
    }
    return results;
  }
}
