import type { Command } from 'commander';

/** `sotto init`: the definition only; init.ts is loaded when it runs. */
export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('create the data directory and a master key file (embedded default)')
    .option('--if-missing', 'do nothing when a master key already exists or is configured')
    .action(async (o: { ifMissing?: boolean }) => {
      const { runInit } = await import('./init.js');
      await runInit({ ifMissing: Boolean(o.ifMissing) });
    });
}
