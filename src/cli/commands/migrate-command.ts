import type { Command } from 'commander';

/** `sotto migrate`: the definition only; migrate.ts (and the database driver) load when it runs. */
export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--status', 'list applied and pending migrations without applying anything')
    .action(async (o: { status?: boolean }) => {
      const { runMigrate } = await import('./migrate.js');
      await runMigrate({ status: Boolean(o.status) });
    });
}
