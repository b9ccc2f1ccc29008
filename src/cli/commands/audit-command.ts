import type { Command } from 'commander';
import type { Services } from '../../app.js';
import type { AuditVerifyOptions } from './audit.js';

/** `sotto audit …`: the definitions only; audit.ts is loaded when a subcommand runs. */
export function registerAuditCommands(program: Command, boot: () => Promise<Services>): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('verify every audit chain (hashes, links, removed entries); exit 1 if any is broken')
    .option('--org <id>', 'verify one organization only')
    .option('--json', 'machine-readable output')
    .action(async (opts: AuditVerifyOptions) => {
      const { auditVerify } = await import('./audit.js');
      process.exitCode = await auditVerify(await boot(), opts);
    });
}
