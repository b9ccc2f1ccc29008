import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { Database } from './database.js';

/**
 * Versioned, up-only SQL migrations (`NNNN_name.sql` beside this file). Each runs in its own
 * transaction under an advisory lock, so two nodes starting together apply it once. Editing a
 * migration that already ran is refused by checksum.
 */
const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
const LOCK_KEY = 7_303_070; // arbitrary, constant: "sotto migrations"

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(new URL(file, MIGRATIONS_DIR), 'utf8');
      return {
        version: Number(file.slice(0, 4)),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

async function ensureTable(db: Database): Promise<void> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
}

async function applied(db: Database): Promise<Map<number, { name: string; checksum: string }>> {
  const { rows } = await db.query<{ version: number; name: string; checksum: string }>(
    'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
  );
  return new Map(rows.map((r) => [r.version, { name: r.name, checksum: r.checksum }]));
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export async function pendingMigrations(db: Database): Promise<Migration[]> {
  await ensureTable(db);
  const done = await applied(db);
  const all = await loadMigrations();
  for (const m of all) {
    const prior = done.get(m.version);
    if (prior && prior.checksum !== m.checksum) {
      throw new MigrationError(`migration ${m.name} was changed after it was applied (checksum mismatch)`);
    }
  }
  return all.filter((m) => !done.has(m.version));
}

/** Applies every pending migration; returns the names applied. */
export async function migrate(db: Database): Promise<string[]> {
  const pending = await pendingMigrations(db);
  const appliedNow: string[] = [];
  for (const m of pending) {
    const ran = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      const { rows } = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (rows.length > 0) return false; // another node applied it while we waited
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        m.checksum,
      ]);
      return true;
    });
    if (ran) appliedNow.push(m.name);
  }
  return appliedNow;
}
