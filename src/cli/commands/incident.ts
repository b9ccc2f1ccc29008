import type { Command } from 'commander';
import type { Services } from '../../app.js';
import { AppError } from '../../domain/errors.js';
import { IncidentService, type IncidentReport } from '../../services/incident.service.js';
import { CliError } from '../runtime.js';
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

export function registerIncidentCommands(program: Command, boot: () => Promise<Services>): void {
  const incident = program.command('incident').description('incident response from the audit log');
  incident
    .command('report')
    .description('who touched which organizations, users and recordings in a window; draft owner notices')
    .requiredOption('--from <iso>', 'start of the window (ISO 8601, inclusive)')
    .requiredOption('--to <iso>', 'end of the window (ISO 8601, exclusive)')
    .option('--org <id>', 'one organization only')
    .option('--json', 'machine-readable output')
    .action(async (opts: IncidentReportOptions) => {
      await incidentReport(await boot(), opts);
    });
}
