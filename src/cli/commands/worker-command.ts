import type { Command } from 'commander';
import type { WorkerCommandOptions } from './worker.js';

/**
 * `sotto worker`: the definition only; worker.ts (engine selection, decoder, API client) is
 * loaded when it runs.
 */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('run a transcription worker that takes jobs from a Sotto server over HTTPS')
    .requiredOption('--api <url>', "the server's public URL, e.g. https://sotto.example.com")
    .option('--token <token>', 'worker token (prefer SOTTO_WORKER_TOKEN: arguments are visible in ps)')
    .option('--ca <file>', "PEM file of the CA (or self-signed certificate) of the server's certificate")
    .option('--insecure', 'do not verify the server certificate (testing only)')
    .option('--concurrency <n>', 'jobs worked on at once', (v) => Number(v), 1)
    .option(
      '--heartbeat-seconds <n>',
      'how often progress is sent and the lease renewed',
      (v) => Number(v),
      5,
    )
    .action(async (opts: WorkerCommandOptions) => {
      const { runWorkerCommand } = await import('./worker.js');
      await runWorkerCommand(opts);
    });
}
