import type { Command } from 'commander';
import type { Services } from '../../app.js';

/** `sotto workers …`: the definitions only; workers.ts is loaded when a subcommand runs. */
export function registerWorkersCommands(program: Command, boot: () => Promise<Services>): void {
  const workers = program.command('workers').description('remote transcription worker tokens');
  workers
    .command('add')
    .description('create a worker token (printed once)')
    .requiredOption('--name <name>', 'a label for the worker, e.g. gpu-node-1')
    .option('--org <slug>', 'only claim jobs of this organization (default: every organization)')
    .action(async (opts: { name: string; org?: string }) => {
      const { addWorker } = await import('./workers.js');
      await addWorker(await boot(), opts);
    });
  workers
    .command('list')
    .description('list worker tokens (never the tokens themselves)')
    .action(async () => {
      const { listWorkers } = await import('./workers.js');
      await listWorkers(await boot());
    });
  workers
    .command('revoke')
    .description('revoke a worker token at once; the jobs it holds go back to the queue')
    .argument('<id>', 'the token id')
    .action(async (id: string) => {
      const { revokeWorker } = await import('./workers.js');
      await revokeWorker(await boot(), id);
    });
}
