import { loadBootstrapConfig } from '../../config/config.js';
import { loadMigrations, migrate, pendingMigrations } from '../../db/migrate.js';
import { stdout, type Print } from '../output.js';
import { openDataStore } from '../runtime.js';

/**
 * `sotto migrate [--status]`: applies (or lists) the versioned SQL migrations. Needs no master
 * key: a DBA can run it with only DATABASE_URL.
 */
export interface MigrateOptions {
  status: boolean;
  env?: Record<string, string | undefined>;
  print?: Print;
}

export interface MigrateResult {
  applied: string[];
  pending: string[];
}

export async function runMigrate(opts: MigrateOptions): Promise<MigrateResult> {
  const print = opts.print ?? stdout;
  const boot = loadBootstrapConfig(opts.env);
  const store = await openDataStore(boot);
  try {
    const where = store.db.kind === 'postgres' ? 'PostgreSQL' : 'embedded PGlite';
    if (opts.status) {
      const pending = (await pendingMigrations(store.db)).map((m) => m.name);
      const applied = (await loadMigrations()).map((m) => m.name).filter((n) => !pending.includes(n));
      print(`Database: ${where}`);
      for (const name of applied) print(`  applied  ${name}`);
      for (const name of pending) print(`  pending  ${name}`);
      print(pending.length === 0 ? 'Up to date.' : `${pending.length} pending: run \`sotto migrate\`.`);
      return { applied, pending };
    }
    const applied = await migrate(store.db);
    for (const name of applied) print(`applied ${name}`);
    print(
      applied.length === 0
        ? `Database (${where}) already up to date.`
        : `Applied ${applied.length} migration(s).`,
    );
    return { applied, pending: [] };
  } finally {
    await store.close();
  }
}
