#!/usr/bin/env node
import { Command } from 'commander';
import type { Services } from '../app.js';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { createLogger } from '../http/logger.js';
import { registerAdminCommands } from './commands/admin.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBotCommand } from './commands/bot.js';
import { registerIncidentCommands } from './commands/incident.js';
import { registerInitCommand } from './commands/init.js';
import { registerKeysCommands } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerModelCommands } from './commands/models.js';
import { registerServeCommand } from './commands/serve-command.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerWorkersCommands } from './commands/workers.js';
import { CliError } from './cli-error.js';
import { openRuntime, type Runtime } from './runtime.js';

/**
 * The `sotto` binary. Commands that need the database open it through `boot`, once per process;
 * whatever was opened is closed when the command finishes. Every failure ends with a one-line
 * (or, for configuration, one-list) message on stderr and exit status 1.
 */
const opened: Runtime[] = [];

// One-shot commands log warnings only, to stderr, so their stdout stays readable.
const quietLogger = (config: Config) =>
  createLogger(config.logLevel === 'silent' ? 'silent' : 'warn', process.stderr);

async function open(config: Config): Promise<Runtime> {
  const runtime = await openRuntime(config, { logger: quietLogger(config) });
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
const boot = (): Promise<Services> => (booted ??= open(loadConfig()).then((r) => r.services));

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
  if (err instanceof ConfigError) console.error(err.message);
  else console.error(`sotto: ${err instanceof CliError ? err.message : (err as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const runtime of opened.splice(0)) await runtime.close().catch(() => undefined);
}
