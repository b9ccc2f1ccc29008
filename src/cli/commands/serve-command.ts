import type { Command } from 'commander';

/** `sotto serve`; the server itself (serve.ts) is loaded only when this command runs. */
const SHUTDOWN_GRACE_MS = 15_000;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the HTTPS API server')
    .action(async () => {
      // Installed before anything starts: the listener answers (a load balancer may already send
      // traffic, an orchestrator may already stop us) before start-up ends, and a SIGTERM then
      // must not kill the process mid-way. A signal during start-up shuts down once it is done.
      const signal = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      // A second signal, or a shutdown that hangs, ends the process the hard way.
      const force = (): never => process.exit(1);
      void signal.then(() => {
        process.once('SIGINT', force);
        process.once('SIGTERM', force);
        setTimeout(force, SHUTDOWN_GRACE_MS).unref();
      });
      // Loaded here, not at the top: every other command (and `--help`) starts without the server.
      const { startServe } = await import('./serve.js');
      const running = await startServe();
      const log = running.runtime.services.logger;
      log.info({ signal: await signal }, 'shutting down');
      await running.close();
      log.info('stopped');
    });
}
