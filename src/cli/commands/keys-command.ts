import type { Command } from 'commander';
import type { OpenServices } from './keys.js';

/** `sotto keys …`: the definitions only; keys.ts (and the configuration) load when a subcommand runs. */
export function registerKeysCommands(program: Command, open: OpenServices): void {
  const keys = program.command('keys').description('master key status and rotation');
  keys
    .command('status')
    .description('show the master key versions, their ages, and which versions wrap the data keys')
    .action(async () => {
      const { runKeysStatus } = await import('./keys.js');
      await runKeysStatus(open);
    });
  keys
    .command('rotate')
    .description('add a master key version (key file) and re-wrap every data key under it, online')
    .option('--rewrap-only', 're-wrap to the highest configured version without adding one')
    .action(async (o: { rewrapOnly?: boolean }) => {
      const { runKeysRotate } = await import('./keys.js');
      await runKeysRotate(open, Boolean(o.rewrapOnly));
    });
}
