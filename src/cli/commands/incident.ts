import type { Services } from '../../app.js';
import { AppError } from '../../domain/errors.js';
import {
  IncidentNotifyService,
  type NotifyOutcome,
  type OrgNotifyResult,
} from '../../services/operations/incident-notify.service.js';
import { IncidentService, type IncidentReport } from '../../services/operations/incident.service.js';
import { CliError } from '../cli-error.js';
import { stdout, type Print } from '../output.js';

export interface IncidentReportOptions {
  from: string;
  to: string;
  org?: string | undefined;
  json?: boolean | undefined;
}

/**
 * `sotto incident report --from <iso> --to <iso> [--org <id>]` (docs/security.md, incident
 * runbook): the organizations, users and recordings the audit log shows touched in the window,
 * by whom and how, and a draft notice per affected org for its owners. Prints; sends nothing.
 */
export async function incidentReport(
  services: Services,
  opts: IncidentReportOptions,
  print: Print = stdout,
): Promise<IncidentReport> {
  let report: IncidentReport;
  try {
    report = await new IncidentService(services.db, services.config.securityContact).report({
      from: new Date(opts.from),
      to: new Date(opts.to),
      orgId: opts.org,
    });
  } catch (err) {
    if (err instanceof AppError && err.code === 'validation_failed') throw new CliError(err.message);
    throw err;
  }
  if (opts.json) {
    print(JSON.stringify(report, null, 2));
    return report;
  }
  print(
    `Audit entries from ${report.from.toISOString()} to ${report.to.toISOString()}` +
      `${report.orgId ? ` in org ${report.orgId}` : ''}: ${report.entries} ` +
      `(${report.orgs.length} organization(s), ${report.platformEntries} platform entries)`,
  );
  for (const org of report.orgs) {
    print('');
    print(`== Organization ${org.name ?? '(deleted)'} ${org.slug ? `[${org.slug}] ` : ''}${org.orgId}`);
    print(`   ${org.entries} entries, ${org.first.toISOString()} → ${org.last.toISOString()}`);
    print('   By whom:');
    for (const a of org.actors) {
      const who = a.email ?? a.id ?? '(no id)';
      const did = Object.entries(a.actions)
        .map(([action, n]) => `${action} ×${n}`)
        .join(', ');
      print(`     ${a.kind} ${who}: ${did}`);
    }
    print(`   Users touched: ${org.usersTouched.length}`);
    for (const u of org.usersTouched) print(`     ${u.email ?? u.id}: ${u.actions.join(', ')}`);
    print(`   Recordings touched: ${org.recordingsTouched.length}`);
    for (const r of org.recordingsTouched) print(`     ${r.id}: ${r.actions.join(', ')}`);
    for (const [type, ids] of Object.entries(org.otherTargets)) print(`   Other ${type}: ${ids.join(', ')}`);
    print('   Draft notice to the owners (check it, then send it yourself):');
    for (const line of org.notice.split('\n')) print(`   | ${line}`);
  }
  return report;
}

export interface IncidentNotifyOptions {
  from: string;
  to: string;
  org?: string | undefined;
  dryRun?: boolean | undefined;
  force?: boolean | undefined;
}

const OUTCOME: Record<NotifyOutcome, string> = {
  sent: 'sent',
  would_send: 'would send (dry run)',
  partly_sent: 'PARTLY SENT',
  sent_unrecorded: 'SENT BUT NOT RECORDED (a re-run of this window would send it again: leave this org out)',
  failed: 'FAILED',
  already_notified: 'already notified for this window (--force to resend)',
  no_owner: 'no owner on record: notify this org another way',
};

/**
 * `sotto incident notify --from <iso> --to <iso> [--org <id>] [--dry-run] [--force]`: sends each
 * affected org's drafted notice to its owners over SMTP and records it in the org's audit chain
 * (docs/security.md, incident runbook). The same window is not sent twice without --force.
 */
export async function incidentNotify(
  services: Services,
  opts: IncidentNotifyOptions,
  print: Print = stdout,
): Promise<OrgNotifyResult[]> {
  const contact = services.config.securityContact;
  const notifier = new IncidentNotifyService(
    services.db,
    new IncidentService(services.db, contact),
    services.audit,
    services.mailer,
    contact,
  );
  let results: OrgNotifyResult[];
  try {
    results = await notifier.notify({
      from: new Date(opts.from),
      to: new Date(opts.to),
      orgId: opts.org,
      dryRun: opts.dryRun,
      force: opts.force,
    });
  } catch (err) {
    if (err instanceof AppError && err.code === 'validation_failed') throw new CliError(err.message);
    throw err;
  }
  if (results.length === 0) print('No organization has audit entries in the window: nothing to send.');
  for (const r of results) {
    const counts =
      r.outcome === 'partly_sent' || r.outcome === 'failed' || r.outcome === 'sent_unrecorded'
        ? ` (${r.sent}/${r.recipients.length})`
        : '';
    print(
      `${r.orgId} ${r.name ?? '(deleted)'}: ${OUTCOME[r.outcome]}${counts} → ${r.recipients.join(', ') || '-'}`,
    );
  }
  const unrecorded = results.filter((r) => r.outcome === 'sent_unrecorded');
  if (unrecorded.length > 0) {
    throw new CliError(
      `${unrecorded.length} organization(s) notified but not recorded in the audit log (database error): do not re-run this window for them`,
    );
  }
  const failed = results.filter((r) => r.outcome === 'failed' || r.outcome === 'partly_sent');
  if (failed.length > 0) {
    throw new CliError(
      `${failed.length} organization(s) not fully notified: check SOTTO_SMTP_URL and the addresses, then re-run (with --force --org <id> for those marked PARTLY SENT)`,
    );
  }
  return results;
}
