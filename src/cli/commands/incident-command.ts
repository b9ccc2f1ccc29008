import type { Command } from 'commander';
import type { Services } from '../../app.js';
import type { IncidentNotifyOptions, IncidentReportOptions } from './incident.js';

/** `sotto incident …`: the definitions only; incident.ts is loaded when a subcommand runs. */
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
      const { incidentReport } = await import('./incident.js');
      await incidentReport(await boot(), opts);
    });
  incident
    .command('notify')
    .description(
      "send each affected org's notice to its owners (SMTP) and record it in the org's audit chain",
    )
    .requiredOption('--from <iso>', 'start of the window (ISO 8601, inclusive)')
    .requiredOption('--to <iso>', 'end of the window (ISO 8601, exclusive)')
    .option('--org <id>', 'one organization only')
    .option('--dry-run', 'list who would get which notice; send and record nothing')
    .option('--force', 'send again to orgs already notified for this exact window')
    .action(async (opts: IncidentNotifyOptions) => {
      const { incidentNotify } = await import('./incident.js');
      await incidentNotify(await boot(), opts);
    });
}
