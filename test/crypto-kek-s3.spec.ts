/**
 * The per-org key-encryption keys in object storage (SOTTO_KEY_STORE=s3, issue 16,
 * docs/deployment.md#key-store), against a real S3-compatible server (test/helpers/s3-server.ts)
 * through the official AWS SDK: each org's sealed KEK is one object in a bucket of its own, apart
 * from the audio bucket; another node (a second KeyService over its own client) reads the same
 * org's data; shredding deletes the object, after which neither node, nor a restored database
 * backup, decrypts anything of the org. A key bucket that overlaps the data bucket is refused at
 * parse, and no credential reaches a log line, an error or /readyz.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { S3Bucket } from '../src/adapters/storage/s3-bucket.adapter.js';
import { S3KekStore } from '../src/adapters/storage/s3-kek.adapter.js';
import { KeyCache } from '../src/services/keys/key-cache.js';
import { KeyService } from '../src/services/keys/key.service.js';
import { createOrgWithUser } from './helpers/fixtures.js';
import { S3_ACCESS_KEY, S3_SECRET_KEY, startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { backendLabel, startTestApp, testMasterKey, type TestApp } from './helpers/test-app.js';

const DATA = 'sotto-data';
const KEYS = 'sotto-keys';

describe('key store configuration', () => {
  const base = {
    SOTTO_ENV: 'test',
    SOTTO_MASTER_KEY: testMasterKey(),
    SOTTO_STORAGE: 's3',
    SOTTO_S3_ENDPOINT: 'http://127.0.0.1:9000',
    SOTTO_S3_BUCKET: DATA,
    SOTTO_S3_ACCESS_KEY_ID: 'data-id',
    SOTTO_S3_SECRET_ACCESS_KEY: 'data-secret-value-1',
    SOTTO_KEY_STORE: 's3',
  };
  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message;
    }
    return '';
  };

  it('refuses the data bucket unless both prefixes stay apart, naming the variable', () => {
    expect(problems({ ...base, SOTTO_KEY_S3_BUCKET: DATA })).toMatch(
      /SOTTO_KEY_S3_BUCKET: sotto-data is also/,
    );
    // One prefix inside the other: a listing or deletion of the data could reach the keys.
    expect(
      problems({
        ...base,
        SOTTO_S3_PREFIX: 'prod/',
        SOTTO_KEY_S3_BUCKET: DATA,
        SOTTO_KEY_S3_PREFIX: 'prod/keys',
      }),
    ).toMatch(/SOTTO_KEY_S3_BUCKET/);
    expect(problems({ ...base, SOTTO_KEY_S3_BUCKET: DATA, SOTTO_KEY_S3_PREFIX: 'keys/' })).toMatch(
      /SOTTO_KEY_S3_BUCKET/,
    );
    const apart = loadConfig({
      ...base,
      SOTTO_S3_PREFIX: 'data/',
      SOTTO_KEY_S3_BUCKET: DATA,
      SOTTO_KEY_S3_PREFIX: 'keys',
    });
    expect(apart.keyStore).toMatchObject({ kind: 's3', s3: { bucket: DATA, prefix: 'keys/' } });
    // The same bucket name on another store is another bucket.
    expect(
      loadConfig({ ...base, SOTTO_KEY_S3_BUCKET: DATA, SOTTO_KEY_S3_ENDPOINT: 'http://127.0.0.1:9001' })
        .keyStore.kind,
    ).toBe('s3');
  });

  it('defaults every setting but the bucket to the storage, credentials as a whole', () => {
    const inherited = loadConfig({ ...base, SOTTO_KEY_S3_BUCKET: KEYS }).keyStore;
    expect(inherited).toEqual({
      kind: 's3',
      s3: {
        endpoint: 'http://127.0.0.1:9000',
        region: 'us-east-1',
        bucket: KEYS,
        prefix: '',
        credentials: { accessKeyId: 'data-id', secretAccessKey: 'data-secret-value-1' },
        forcePathStyle: true,
        ca: undefined,
      },
    });
    const own = loadConfig({
      ...base,
      SOTTO_KEY_S3_BUCKET: KEYS,
      SOTTO_KEY_S3_REGION: 'eu-west-1',
      SOTTO_KEY_S3_ACCESS_KEY_ID: 'keys-id',
      SOTTO_KEY_S3_SECRET_ACCESS_KEY: 'keys-secret-value-2',
    }).keyStore;
    expect(own).toMatchObject({
      s3: {
        region: 'eu-west-1',
        credentials: { accessKeyId: 'keys-id', secretAccessKey: 'keys-secret-value-2' },
      },
    });
    // Half of its own credentials never borrows the other half from the storage.
    const half = problems({
      ...base,
      SOTTO_KEY_S3_BUCKET: KEYS,
      SOTTO_KEY_S3_SECRET_ACCESS_KEY: 'keys-secret-value-2',
    });
    expect(half).toMatch(/SOTTO_KEY_S3_ACCESS_KEY_ID and SOTTO_KEY_S3_SECRET_ACCESS_KEY: set both/);
    expect(half).not.toContain('keys-secret-value-2');
    expect(half).not.toContain('data-secret-value-1');
  });

  it('names every bad key-store variable in one error', () => {
    const message = problems({
      ...base,
      SOTTO_KEY_DIR: '/srv/keys',
      SOTTO_KEY_S3_PREFIX: '/abs',
      SOTTO_KEY_S3_ENDPOINT: 'ftp://keys.example',
    });
    for (const name of [
      'SOTTO_KEY_S3_BUCKET: required',
      'SOTTO_KEY_DIR',
      'SOTTO_KEY_S3_PREFIX',
      'SOTTO_KEY_S3_ENDPOINT',
    ])
      expect(message).toContain(name);
    // Key-bucket settings with the directory store would look like a shared key store.
    expect(problems({ ...base, SOTTO_KEY_STORE: 'dir', SOTTO_KEY_S3_BUCKET: KEYS })).toMatch(
      /SOTTO_KEY_S3_BUCKET: set, but SOTTO_KEY_STORE is not s3/,
    );
    expect(problems({ ...base, SOTTO_KEY_STORE: 'vault' })).toMatch(/SOTTO_KEY_STORE/);
    // Unset: the directory, as before.
    const { SOTTO_KEY_STORE: _unused, ...dirEnv } = base;
    expect(loadConfig(dirEnv).keyStore.kind).toBe('dir');
  });

  it('refuses a key bucket that keeps old versions (a shredded key would survive)', async () => {
    const closed: string[] = [];
    const versioned = {
      bucket: KEYS,
      versioning: () => Promise.resolve('on' as const),
      close: () => closed.push(KEYS),
    } as unknown as S3Bucket;
    await expect(S3KekStore.open(versioned)).rejects.toThrow(/SOTTO_KEY_S3_BUCKET: versioning is enabled/);
    expect(closed).toEqual([KEYS]);
  });
});

describe(`org keys in object storage (${backendLabel})`, () => {
  let s3: S3TestServer;
  let t: TestApp;
  const clients: S3Bucket[] = [];

  const keyEnv = (extra: Record<string, string> = {}) => ({
    ...s3.env({ bucket: DATA }),
    SOTTO_KEY_STORE: 's3',
    SOTTO_KEY_S3_BUCKET: KEYS,
    SOTTO_KEY_S3_PREFIX: 'kek/',
    SOTTO_KEY_S3_ACCESS_KEY_ID: S3_ACCESS_KEY,
    SOTTO_KEY_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    ...extra,
  });
  /** Another node's key store: its own S3 client over the same settings. */
  const nodeStore = () => {
    const cfg = t.services.config.keyStore;
    if (cfg.kind !== 's3') throw new Error('expected the s3 key store');
    const bucket = new S3Bucket(cfg.s3);
    clients.push(bucket);
    return new S3KekStore(bucket);
  };
  const loc = (orgId: string) => ({ orgId, table: 'orgs', rowId: orgId, field: 'settings_enc' });

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: [DATA, KEYS] });
    t = await startTestApp({ env: keyEnv() });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await t?.close();
    await s3?.close();
  });

  it('writes, reads, replaces and destroys a sealed KEK as one object in the key bucket', async () => {
    const store = nodeStore();
    const orgId = randomUUID();
    const sealed = randomBytes(80);
    expect(await store.read(orgId)).toBeUndefined();
    await store.write(orgId, sealed);
    expect(await s3.keys('kek/', KEYS)).toContain(`kek/org-${orgId}.kek`);
    expect(await s3.read(`kek/org-${orgId}.kek`, KEYS)).toEqual(sealed);
    expect(await store.read(orgId)).toEqual(sealed);
    const replaced = randomBytes(80);
    await store.write(orgId.toUpperCase(), replaced);
    expect(await store.read(orgId)).toEqual(replaced);
    await store.destroy(orgId);
    expect(await store.read(orgId)).toBeUndefined();
    expect(await s3.keys('kek/', KEYS)).not.toContain(`kek/org-${orgId}.kek`);
    await store.destroy(orgId); // idempotent
    await expect(store.read('../etc/passwd')).rejects.toThrow(/invalid org id/);
  });

  it('keeps every org key in the key bucket, none in the data bucket', async () => {
    const u = await createOrgWithUser(t.services);
    expect(await s3.keys('kek/', KEYS)).toContain(`kek/org-${u.orgId}.kek`);
    expect((await s3.keys('', DATA)).filter((k) => k.includes('.kek'))).toEqual([]);
    expect(await t.services.keys.hasKek(u.orgId)).toBe(true);
    // s3rver answers GetBucketVersioning like a bucket that never had versioning: no warning.
    expect(t.logs.join('\n')).not.toMatch(/versioning/);
  });

  it('another node reads the same org; shredding makes it undecryptable on both, and in a restored backup', async () => {
    const u = await createOrgWithUser(t.services);
    const a = t.services.keys;
    let now = Date.now();
    const b = new KeyService(
      t.db,
      t.services.config.masterKeys,
      nodeStore(),
      new KeyCache(60_000, () => now),
    );
    const ct = await withTenant(t.db, u, (tx) => a.encrypt(tx, loc(u.orgId), 'the board meets on tuesday'));
    const readWith = (keys: KeyService) =>
      withTenant(t.db, u, (tx) => keys.decryptString(tx, loc(u.orgId), ct));
    expect(await readWith(b)).toBe('the board meets on tuesday');
    // And the other way round: B seals, A opens.
    const fromB = await withTenant(t.db, u, (tx) => b.encrypt(tx, loc(u.orgId), 'from node b'));
    expect(await withTenant(t.db, u, (tx) => a.decryptString(tx, loc(u.orgId), fromB))).toBe('from node b');

    // A database backup taken before the deletion: the org's wrapped data keys.
    const backup = await withSystem(t.db, (tx) =>
      tx.query<{ version: number; wrapped: Uint8Array; master_version: number; wrapped_by: string }>(
        'SELECT version, wrapped, master_version, wrapped_by FROM org_keys WHERE org_id = $1',
        [u.orgId],
      ),
    );
    expect(backup.rows.length).toBeGreaterThan(0);

    await withSystem(t.db, (tx) => a.shredOrg(tx, u.orgId));
    expect(await s3.keys('kek/', KEYS)).not.toContain(`kek/org-${u.orgId}.kek`);
    expect(await b.hasKek(u.orgId)).toBe(false);
    await expect(readWith(a)).rejects.toMatchObject({ code: 'decryption_failed' });
    // Node B loses its cached data key within the cache's lifetime, as documented.
    now += 61_000;
    await expect(readWith(b)).rejects.toMatchObject({ code: 'decryption_failed' });

    // The backup restored: its rows are back, but the KEK is gone from the key bucket.
    await withSystem(t.db, async (tx) => {
      for (const r of backup.rows)
        await tx.query(
          'INSERT INTO org_keys (org_id, version, wrapped, master_version, wrapped_by) VALUES ($1, $2, $3, $4, $5)',
          [u.orgId, r.version, r.wrapped, r.master_version, r.wrapped_by],
        );
    });
    const fresh = new KeyService(t.db, t.services.config.masterKeys, nodeStore());
    await expect(readWith(fresh)).rejects.toMatchObject({ code: 'decryption_failed' });
    await expect(readWith(a)).rejects.toMatchObject({ code: 'decryption_failed' });
    await withSystem(t.db, (tx) => tx.query('DELETE FROM org_keys WHERE org_id = $1', [u.orgId]));
  });

  it('never puts a credential in a log line, an error or /readyz', async () => {
    const secret = `wrong-secret-${randomUUID()}`;
    const cfg = t.services.config.keyStore;
    if (cfg.kind !== 's3') throw new Error('expected the s3 key store');
    const wrong = new S3Bucket({
      ...cfg.s3,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: secret },
    });
    clients.push(wrong);
    const err = await new S3KekStore(wrong).read(randomUUID()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(`${String(err)} ${JSON.stringify(err)} ${(err as Error).stack}`).not.toContain(secret);

    const refused = await startTestApp({ env: keyEnv({ SOTTO_KEY_S3_SECRET_ACCESS_KEY: secret }) });
    try {
      const res = await refused.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json<{ checks: { storage: string } }>().checks.storage).toBe('denied');
      expect(res.body).not.toContain(secret);
      const logs = refused.logs.join('\n');
      expect(logs).toMatch(/key store unusable/);
      // Versioning could not be read either (refused): the operator is told to check it.
      expect(logs).toMatch(/could not read the versioning of SOTTO_KEY_S3_BUCKET/);
      expect(logs).toContain(`${KEYS}/kek/`);
      expect(logs).not.toContain(secret);
    } finally {
      await refused.close();
    }
    const ready = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json<{ checks: { storage: string } }>().checks.storage).toBe('ok');
    expect(t.logs.join('\n')).not.toContain(S3_SECRET_KEY);
  });
});
