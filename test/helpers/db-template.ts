import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dumpEmbeddedDatabase, openDatabase } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';

/**
 * Vitest global setup: the migrated database every spec starts from, made once per run instead
 * of once per test app. Starting PGlite from nothing runs initdb (1.2–2.5 s on the 2-core CI
 * machine) and then 26 migrations; loading a migrated data directory takes about 0.4 s. On
 * PostgreSQL, `CREATE DATABASE … TEMPLATE` copies a migrated database in about 0.1 s where
 * creating and migrating one takes about 1.2 s. With a few hundred test apps per run that is
 * minutes of CI.
 *
 * Both are made here, in the main vitest process, by the real migrations of this checkout, so a
 * spec never starts from a schema other than what `migrate` produces. The workers learn where
 * they are from two environment variables (forked after the global setup, they inherit them);
 * without them (a bench, a script) `freshDatabase` migrates as before.
 */
const SNAPSHOT_ENV = 'SOTTO_TEST_PGLITE_SNAPSHOT';
const TEMPLATE_ENV = 'SOTTO_TEST_PG_TEMPLATE';

// The root config and each vitest project run the global setup: build once per process.
const ONCE = Symbol.for('sotto.test.db-template');

export default async function setup(): Promise<() => Promise<void>> {
  const g = globalThis as { [ONCE]?: { built: Promise<() => Promise<void>>; torn?: Promise<void> } };
  const state = (g[ONCE] ??= { built: build() });
  await state.built;
  return () => (state.torn ??= state.built.then((teardown) => teardown()));
}

async function build(): Promise<() => Promise<void>> {
  const undo: (() => Promise<void>)[] = [];

  const db = await openDatabase({});
  await migrate(db);
  const file = path.join(tmpdir(), `sotto-pglite-snapshot-${randomUUID()}.tar`);
  writeFileSync(file, new Uint8Array(await (await dumpEmbeddedDatabase(db)).arrayBuffer()), { mode: 0o600 });
  await db.close();
  process.env[SNAPSHOT_ENV] = file;
  undo.push(() => Promise.resolve(rmSync(file, { force: true })));

  const adminUrl = process.env.DATABASE_URL;
  if (adminUrl) {
    const name = `sotto_template_${randomUUID().replace(/-/g, '')}`;
    const admin = await openDatabase({ databaseUrl: adminUrl, poolSize: 1 });
    await admin.exec(`CREATE DATABASE ${name}`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const template = await openDatabase({ databaseUrl: url.toString(), poolSize: 1 });
    await migrate(template);
    // A template must have no connection open while it is copied.
    await template.close();
    process.env[TEMPLATE_ENV] = name;
    undo.push(async () => {
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    });
  }

  return async () => {
    for (const step of undo.reverse()) await step();
  };
}

let snapshot: Blob | undefined;

/** The migrated PGlite data directory of this run, or undefined outside a vitest run. */
export function pgliteSnapshot(): Blob | undefined {
  const file = process.env[SNAPSHOT_ENV];
  if (!file) return undefined;
  snapshot ??= new Blob([readFileSync(file)]);
  return snapshot;
}

/** The migrated PostgreSQL template database of this run, or undefined. */
export function postgresTemplate(): string | undefined {
  return process.env[TEMPLATE_ENV];
}
