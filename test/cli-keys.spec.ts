import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKeyring } from '../src/crypto/keyring.js';
import { openDatabase } from '../src/db/database.js';
import { withTenant } from '../src/db/tenant.js';
import { readKeyFile } from '../src/adapters/storage/master-key-file.adapter.js';
import { KeyService } from '../src/services/keys/key.service.js';
import { backendLabel } from './helpers/test-app.js';

/** `sotto init` → `sotto keys status` → `sotto keys rotate` → `sotto keys status`, as processes. */
const MAIN = path.resolve('src/cli/main.ts');

function sotto(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sotto ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe(`sotto keys (${backendLabel})`, () => {
  let dir: string;
  let env: Record<string, string>;
  let cleanup: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-keys-'));
    env = { SOTTO_DATA_DIR: dir, SOTTO_LOG_LEVEL: 'warn' };
    const adminUrl = process.env.DATABASE_URL;
    if (adminUrl) {
      const name = `sotto_keys_${randomUUID().replace(/-/g, '')}`;
      const admin = await openDatabase({ databaseUrl: adminUrl, poolSize: 1 });
      await admin.exec(`CREATE DATABASE ${name}`);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      env.DATABASE_URL = url.toString();
      cleanup = async () => {
        await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.close();
      };
    }
    if (process.env.REDIS_URL) env.REDIS_URL = process.env.REDIS_URL;
    expect((await sotto(['init'], env)).code).toBe(0);
    expect((await sotto(['migrate'], env)).code).toBe(0);
    // Three orgs with data keys under v1, written the way the application writes them.
    const db = await openDatabase(
      env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : { pgliteDir: path.join(dir, 'db') },
    );
    try {
      const keys = new KeyService(
        db,
        readKeyFile(path.join(dir, 'keys', 'master.key')),
        path.join(dir, 'keys'),
      );
      for (let i = 0; i < 3; i++) {
        const id = randomUUID();
        await withTenant(db, { orgId: id, userId: null }, async (tx) => {
          await tx.query('INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3)', [
            id,
            'Org',
            `k-${id.slice(0, 8)}`,
          ]);
          await keys.createOrgKey(tx, id);
        });
      }
    } finally {
      await db.close();
    }
  });
  afterAll(async () => {
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'rotates the key file and re-wraps, then status shows every data key on the new version',
    { timeout: 240_000 },
    async () => {
      const file = path.join(dir, 'keys', 'master.key');
      const before = parseKeyring(readFileSync(file, 'utf8'));

      const status1 = await sotto(['keys', 'status'], env);
      expect(status1.code, status1.stderr).toBe(0);
      expect(status1.stdout).toContain(`Master key source: key file ${file}`);
      expect(status1.stdout).toContain('(active: v1)');
      expect(status1.stdout).toMatch(/^ {2}v1: 3 {2}\(active\)$/m);

      const rotate = await sotto(['keys', 'rotate'], env);
      expect(rotate.code, rotate.stderr).toBe(0);
      expect(rotate.stdout).toContain(`Added master key v2 to ${file}`);
      expect(rotate.stdout).toMatch(
        /Re-wrapped 3 data key\(s\) and [1-9]\d* signing key\(s\) under master key v2/,
      );

      const after = parseKeyring(readFileSync(file, 'utf8'));
      expect(after.active.version).toBe(2);
      expect(after.byVersion.get(1)!.key.equals(before.active.key)).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // No key material on the terminal.
      for (const k of after.byVersion.values())
        expect(rotate.stdout + rotate.stderr).not.toContain(k.key.toString('base64'));

      const status2 = await sotto(['keys', 'status'], env);
      expect(status2.code).toBe(0);
      expect(status2.stdout).toContain('(active: v2)');
      expect(status2.stdout).toMatch(/^ {2}v2: 3 {2}\(active\)$/m);
      expect(status2.stdout).not.toMatch(/^\s+v1: /m);
    },
  );

  it('re-wraps only, without adding a version, on request', { timeout: 120_000 }, async () => {
    const r = await sotto(['keys', 'rotate', '--rewrap-only'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('Added master key');
    expect(r.stdout).toContain('Re-wrapped 0 data key(s)');
    expect(r.stdout).toContain('under master key v2');
    expect(parseKeyring(readFileSync(path.join(dir, 'keys', 'master.key'), 'utf8')).active.version).toBe(2);
  });
});
