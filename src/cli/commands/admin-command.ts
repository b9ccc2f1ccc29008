import type { Command } from 'commander';
import type { Services } from '../../app.js';
import type { CreateSupportUserFlags } from './admin.js';

/** `sotto admin …`: the definitions only; admin.ts is loaded when a subcommand runs. */
export function registerAdminCommands(program: Command, boot: () => Promise<Services>): void {
  const admin = program.command('admin').description('platform administration');
  admin
    .command('create-support-user')
    .description('create a platform support account (sees nothing until an organization grants access)')
    .requiredOption('--email <email>', 'the support person’s email (their login)')
    .requiredOption('--name <name>', 'display name')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--generate-password', 'do not prompt: generate a password and print it once')
    .action(async (opts: CreateSupportUserFlags) => {
      const { runCreateSupportUser } = await import('./admin.js');
      await runCreateSupportUser(opts, boot);
    });
}
