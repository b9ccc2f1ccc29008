import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../src/app.js';
import { rotateKeys, type OpenServices } from '../src/cli/commands/keys.js';
import type { Config } from '../src/config/config.js';
import type { FieldLocation } from '../src/crypto/envelope.js';
import type { MasterKey, MasterKeyring } from '../src/crypto/keyring.js';
import { withTenant } from '../src/db/tenant.js';
import {
  createKeyFile,
  liveFileKeyring,
  readKeyFile,
} from '../src/adapters/storage/master-key-file.adapter.js';
import { KeyService } from '../src/services/keys/key.service.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Master key rotation while the service is busy: a "server" keeps reading and rewriting encrypted
 * settings of many orgs (dropping its key cache now and then, so it must unwrap again), while
 * `sotto keys rotate` — the CLI function, on the same database — adds a version to the key file
 * and re-wraps every data key. Nothing may fail, no write may be lost, and afterwards the old
 * master key is no longer needed.
 */
const ORGS = 120; // more than one re-wrap batch (100)
const WORKERS = 4;

interface Ops {
  n: number;
  waiters: { target: number; resolve: () => void }[];
}

const newOps = (): Ops => ({ n: 0, waiters: [] });
const reached = (ops: Ops, target: number): Promise<void> =>
  new Promise((resolve) => ops.waiters.push({ target, resolve }));

const loc = (orgId: string): FieldLocation => ({ orgId, table: 'orgs', rowId: orgId, field: 'settings_enc' });

interface Settings {
  vocabulary: string[];
  n: number;
}

function ring(keys: MasterKey[]): MasterKeyring {
  const byVersion = new Map(keys.map((k) => [k.version, k]));
  return { active: keys.reduce((a, b) => (b.version > a.version ? b : a)), byVersion };
}

describe(`master key rotation under load (${backendLabel})`, () => {
  let dir: string;
  let file: string;
  let v1: MasterKey;
  let t: TestApp;
  let server: Services;
  let v3: MasterKey;
  const orgs: string[] = [];
  const writes = new Map<string, number>();

  const servicesFor = (config: Config) =>
    createServices({ config, db: t.db, redis: t.services.redis, logger: t.services.logger });

  async function createOrg(keys: KeyService): Promise<string> {
    const id = randomUUID();
    await withTenant(t.db, { orgId: id, userId: null }, async (tx) => {
      await tx.query('INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3)', [
        id,
        'Org',
        `r-${id.slice(0, 12)}`,
      ]);
      await keys.createOrgKey(tx, id);
      const enc = await keys.encryptJson(tx, loc(id), { vocabulary: ['confidential term'], n: 0 });
      await tx.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [enc, id]);
    });
    return id;
  }

  async function read(keys: KeyService, org: string): Promise<Settings> {
    return withTenant(t.db, { orgId: org, userId: null }, async (tx) => {
      const { rows } = await tx.query<{ enc: Uint8Array }>(
        'SELECT settings_enc AS enc FROM orgs WHERE id = $1',
        [org],
      );
      return keys.decryptJson<Settings>(tx, loc(org), rows[0]!.enc);
    });
  }

  /**
   * Read-modify-write traffic until stop() says so; returns the errors it met. PGlite answers
   * within microtasks, so the test paces itself by operation counts (`reached`), not timers, and
   * yields to the event loop only now and then (so a hang still hits the test timeout).
   */
  async function traffic(keys: KeyService, stop: () => boolean, ops: Ops): Promise<unknown[]> {
    const errors: unknown[] = [];
    const worker = async () => {
      while (!stop()) {
        if (ops.n % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
        const org = orgs[Math.floor(Math.random() * orgs.length)]!;
        try {
          if (Math.random() < 0.3) keys.forgetOrg(org); // force an unwrap from the database
          await withTenant(t.db, { orgId: org, userId: null }, async (tx) => {
            const { rows } = await tx.query<{ enc: Uint8Array }>(
              'SELECT settings_enc AS enc FROM orgs WHERE id = $1 FOR UPDATE',
              [org],
            );
            const value = await keys.decryptJson<Settings>(tx, loc(org), rows[0]!.enc);
            if (value.vocabulary[0] !== 'confidential term') throw new Error('wrong plaintext');
            const enc = await keys.encryptJson(tx, loc(org), { ...value, n: value.n + 1 });
            await tx.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [enc, org]);
          });
          writes.set(org, (writes.get(org) ?? 0) + 1);
          ops.n++;
          for (const w of ops.waiters) if (ops.n >= w.target) w.resolve();
        } catch (err) {
          errors.push(err);
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    return errors;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-rotate-'));
    file = path.join(dir, 'keys', 'master.key');
    v1 = { version: 1, key: randomBytes(32) };
    createKeyFile(file, [v1]);
    t = await startTestApp({ env: { SOTTO_MASTER_KEY: '', SOTTO_MASTER_KEY_FILE: file } });
    expect(t.services.config.masterKeySource).toEqual({ kind: 'file', path: file });
    // The running server reads the key file the way `sotto serve` does.
    const config = t.services.config;
    server = await servicesFor({ ...config, masterKeys: liveFileKeyring(file, config.masterKeys) });
    for (let i = 0; i < ORGS; i++) orgs.push(await createOrg(server.keys));
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'rotates via `sotto keys rotate` with zero failed requests and no lost write',
    { timeout: 180_000 },
    async () => {
      const ops = newOps();
      let done = false;
      const load = traffic(server.keys, () => done, ops);
      await reached(ops, 50);
      const before = ops.n;
      const printed: string[] = [];
      const open: OpenServices = async (config) => ({
        services: await servicesFor(config),
        close: async () => {},
      });
      const result = await rotateKeys({ config: t.services.config, open, print: (l) => printed.push(l) });
      const during = ops.n - before;
      await reached(ops, ops.n + 50); // and some traffic after
      done = true;
      const errors = await load;

      expect(errors).toEqual([]);
      expect(during).toBeGreaterThan(0); // the traffic really overlapped the rotation
      expect(result).toMatchObject({ addedVersion: 2, activeVersion: 2, dataKeysRewrapped: ORGS });
      expect(result.signingKeysRewrapped).toBeGreaterThanOrEqual(1);
      expect(printed.join('\n')).toContain(`Added master key v2 to ${file}`);

      // Every value reads, with every write counted (read-modify-write under FOR UPDATE).
      for (const org of orgs) {
        server.keys.forgetOrg(org);
        expect((await read(server.keys, org)).n).toBe(writes.get(org) ?? 0);
      }
      // The old master key is no longer needed: a node holding only v2 reads everything.
      const onDisk = readKeyFile(file);
      const onlyV2 = new KeyService(t.db, ring([onDisk.byVersion.get(2)!]), t.services.config.keyDir);
      for (const org of orgs.slice(0, 20))
        expect((await read(onlyV2, org)).vocabulary).toEqual(['confidential term']);

      expect((await server.keys.status()).dataKeysByMasterVersion).toEqual({ 2: ORGS });
      const signing = await t.db.query<{ v: number }>(
        'SELECT DISTINCT master_version AS v FROM signing_keys',
      );
      expect(signing.rows.map((r) => r.v)).toEqual([2]);
    },
  );

  it('kept the old version in the key file, mode 0600, with no temporary or lock file left', () => {
    const onDisk = readKeyFile(file);
    expect([...onDisk.byVersion.keys()].sort()).toEqual([1, 2]);
    expect(onDisk.byVersion.get(1)!.key.equals(v1.key)).toBe(true);
    expect(onDisk.active.version).toBe(2);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(['master.key']);
  });

  it('recorded keys.rotated on the platform audit chain, which still verifies', async () => {
    const { rows } = await t.db.query<{
      action: string;
      actor_kind: string;
      details: Record<string, unknown>;
    }>(`SELECT action, actor_kind, details FROM audit_log WHERE org_id IS NULL AND action = 'keys.rotated'`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.actor_kind).toBe('system');
    expect(rows[0]!.details).toMatchObject({
      source: 'file',
      previousVersion: 1,
      activeVersion: 2,
      versionAdded: true,
      dataKeysRewrapped: ORGS,
    });
    const reports = await t.services.audit.verify(null);
    expect(reports.every((r) => r.ok)).toBe(true);
  });

  it(
    'shares a re-wrap between two nodes in small batches while traffic runs',
    { timeout: 180_000 },
    async () => {
      // Keyring managed outside Sotto (env style): every node already has v3 before re-wrapping.
      const current = readKeyFile(file);
      v3 = { version: 3, key: randomBytes(32) };
      const keyring = ring([...current.byVersion.values(), v3]);
      const node = await servicesFor({ ...t.services.config, masterKeys: keyring });
      const ops = newOps();
      let done = false;
      const load = traffic(node.keys, () => done, ops);
      await reached(ops, 20);
      const before = ops.n;
      const [x, y] = await Promise.all([
        new KeyService(t.db, keyring, t.services.config.keyDir).rewrapAll(7),
        new KeyService(t.db, keyring, t.services.config.keyDir).rewrapAll(7),
      ]);
      const during = ops.n - before;
      done = true;
      expect(await load).toEqual([]);
      expect(during).toBeGreaterThan(0);
      expect(x + y).toBe(ORGS); // each key re-wrapped exactly once (SKIP LOCKED)
      expect((await node.keys.status()).dataKeysByMasterVersion).toEqual({ 3: ORGS });
      const onlyV3 = new KeyService(t.db, ring([v3]), t.services.config.keyDir);
      for (const org of orgs.slice(0, 20))
        expect((await read(onlyV3, org)).vocabulary).toEqual(['confidential term']);
    },
  );

  it('with an environment keyring, re-wraps to the highest version and explains how to add one', async () => {
    const v4: MasterKey = { version: 4, key: randomBytes(32) };
    const keyring = ring([...readKeyFile(file).byVersion.values(), v3, v4]);
    const printed: string[] = [];
    const result = await rotateKeys({
      config: { ...t.services.config, masterKeySource: { kind: 'env' }, masterKeys: keyring },
      open: async (config) => ({ services: await servicesFor(config), close: async () => {} }),
      print: (l) => printed.push(l),
    });
    expect(result.addedVersion).toBeUndefined();
    expect(result).toMatchObject({ activeVersion: 4, dataKeysRewrapped: ORGS });
    expect(printed.join('\n')).toContain('SOTTO_MASTER_KEY="v2:<new base64 key>,v1:<current base64 key>"');
    expect(readKeyFile(file).byVersion.has(4)).toBe(false); // nothing written anywhere
  });
});
