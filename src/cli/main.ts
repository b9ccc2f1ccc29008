#!/usr/bin/env node
import { Command } from 'commander';
import type { Services } from '../app.js';
import type { Config } from '../config/config.js';
import { registerAdminCommands } from './commands/admin-command.js';
import { registerAuditCommands } from './commands/audit-command.js';
import { registerBotCommand } from './commands/bot-command.js';
import { registerIncidentCommands } from './commands/incident-command.js';
import { registerInitCommand } from './commands/init-command.js';
import { registerKeysCommands } from './commands/keys-command.js';
import { registerMigrateCommand } from './commands/migrate-command.js';
import { registerModelCommands } from './commands/models-command.js';
import { registerServeCommand } from './commands/serve-command.js';
import { registerWorkerCommand } from './commands/worker-command.js';
import { registerWorkersCommands } from './commands/workers-command.js';
import { CliError } from './cli-error.js';
import type { Runtime } from './runtime.js';

/**
 * The `sotto` binary. Commands that need the database open it through `boot`, once per process;
 * whatever was opened is closed when the command finishes. Every failure ends with a one-line
 * (or, for configuration, one-list) message on stderr and exit status 1.
 *
 * Only the command definitions (names, options, help) are imported here: each command loads its
 * implementation when it runs, so `--help`, `bot` and `worker` do not pay for the database, the
 * configuration schema or the server (see *-command.ts).
 */
const opened: Runtime[] = [];

async function open(config: Config): Promise<Runtime> {
  const [{ openRuntime }, { createLogger }] = await Promise.all([
    import('./runtime.js'),
    import('../http/logger.js'),
  ]);
  // One-shot commands log warnings only, to stderr, so their stdout stays readable.
  const logger = createLogger(config.logLevel === 'silent' ? 'silent' : 'warn', process.stderr);
  const runtime = await openRuntime(config, { logger });
  opened.push(runtime);
  return {
    ...runtime,
    close: async () => {
      opened.splice(opened.indexOf(runtime), 1);
      await runtime.close();
    },
  };
}

let booted: Promise<Services> | undefined;
/** For command groups that just need services (admin, audit). */
const boot = (): Promise<Services> =>
  (booted ??= import('../config/config.js')
    .then(({ loadConfig }) => open(loadConfig()))
    .then((r) => r.services));

/** A ConfigError can only come from the configuration module, so it is loaded already then. */
async function isConfigError(err: unknown): Promise<boolean> {
  if (!(err instanceof Error) || err.name !== 'ConfigError') return false;
  const { ConfigError } = await import('../config/config.js');
  return err instanceof ConfigError;
}

const program = new Command()
  .name('sotto')
  .description('Sotto: self-hostable, multi-tenant transcription for confidential conversations')
  .showHelpAfterError();

registerServeCommand(program);
registerInitCommand(program);
registerMigrateCommand(program);
registerKeysCommands(program, open);
registerAdminCommands(program, boot);
registerAuditCommands(program, boot);
registerIncidentCommands(program, boot);
// Models need neither the database nor the master key: they work while `serve` holds the data dir.
registerModelCommands(program);
registerWorkersCommands(program, boot);
// The remote worker needs no database, no master key: it talks to a server over HTTPS.
registerWorkerCommand(program);
// The live capture client needs no database either: it talks to a server over HTTPS and WSS.
registerBotCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (await isConfigError(err)) console.error((err as Error).message);
  else console.error(`sotto: ${err instanceof CliError ? err.message : (err as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const runtime of opened.splice(0)) await runtime.close().catch(() => undefined);
}
