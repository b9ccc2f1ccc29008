import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { withSystem } from '../src/db/tenant.js';
import { S3Bucket, PART_BYTES } from '../src/adapters/storage/s3-bucket.adapter.js';
import { S3ObjectStore } from '../src/adapters/storage/s3-object-store.adapter.js';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import {
  cuttingProxy,
  S3_ACCESS_KEY,
  S3_SECRET_KEY,
  startS3Server,
  type S3TestServer,
} from './helpers/s3-server.js';
import { backendLabel, startTestApp, testMasterKey, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * SOTTO_STORAGE=s3 (docs/audio-storage.md#object-storage) against a real S3-compatible server
 * (test/helpers/s3-server.ts) through the official AWS SDK: sealed audio, exports and the cold
 * archive live in the bucket exactly as sealed as on disk; playback fetches only the sealed
 * chunks it needs; deletions remove the objects; a cut connection leaves no half object; a
 * missing or refused bucket makes /readyz say so.
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('object storage configuration', () => {
  const base = { SOTTO_ENV: 'test', SOTTO_MASTER_KEY: testMasterKey() };

  it('names every bad S3 variable in one error, and never a secret', () => {
    let err: unknown;
    try {
      loadConfig({
        ...base,
        SOTTO_STORAGE: 's3',
        SOTTO_S3_BUCKET: 'Not_A_Bucket',
        SOTTO_S3_ENDPOINT: 'ftp://store.example',
        SOTTO_S3_PREFIX: '/abs//x',
        SOTTO_S3_SECRET_ACCESS_KEY: 'very-secret-value-123',
        SOTTO_S3_CA_FILE: '/nonexistent/ca.pem',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    for (const name of [
      'SOTTO_S3_BUCKET',
      'SOTTO_S3_ENDPOINT',
      'SOTTO_S3_PREFIX',
      'SOTTO_S3_ACCESS_KEY_ID',
      'SOTTO_S3_CA_FILE',
    ])
      expect(message).toContain(name);
    expect(message).not.toContain('very-secret-value-123');
    // Values the schema itself refuses are named too (with the master key's, in one error). An
    // empty data dir: the default ./sotto-data holds a key file once `npm start` has run here.
    const empty = mkdtempSync(path.join(tmpdir(), 'sotto-s3-config-'));
    try {
      expect(() =>
        loadConfig({ SOTTO_DATA_DIR: empty, SOTTO_STORAGE: 's3', SOTTO_S3_FORCE_PATH_STYLE: 'perhaps' }),
      ).toThrow(/SOTTO_S3_FORCE_PATH_STYLE[\s\S]*SOTTO_MASTER_KEY/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('refuses plain http to another machine in production, S3 settings without SOTTO_STORAGE=s3, and archive s3 alone', () => {
    const prod = {
      ...base,
      SOTTO_ENV: 'production',
      SOTTO_PUBLIC_URL: 'https://sotto.example',
      SOTTO_STORAGE: 's3',
      SOTTO_S3_BUCKET: 'sotto-data',
    };
    expect(() => loadConfig({ ...prod, SOTTO_S3_ENDPOINT: 'http://minio.internal:9000' })).toThrow(
      /SOTTO_S3_ENDPOINT: minio.internal is not on this machine/,
    );
    expect(loadConfig({ ...prod, SOTTO_S3_ENDPOINT: 'http://127.0.0.1:9000' }).storage.kind).toBe('s3');
    const s3 = loadConfig({
      ...prod,
      SOTTO_S3_ENDPOINT: 'https://minio.internal:9000',
      SOTTO_S3_PREFIX: 'eu',
    });
    expect(s3.storage).toMatchObject({
      kind: 's3',
      s3: {
        bucket: 'sotto-data',
        prefix: 'eu/',
        endpoint: 'https://minio.internal:9000',
        forcePathStyle: true,
      },
    });
    expect(s3.archive.store).toBe('s3');
    expect(() => loadConfig({ ...base, SOTTO_S3_BUCKET: 'sotto-data' })).toThrow(/SOTTO_STORAGE is not s3/);
    expect(() => loadConfig({ ...base, SOTTO_ARCHIVE_STORE: 's3' })).toThrow(/SOTTO_ARCHIVE_STORE/);
  });
});

describe('S3 object store against a real S3 server', () => {
  let s3: S3TestServer;
  let bucket: S3Bucket;
  let store: S3ObjectStore;
  const org = randomUUID();

  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['sotto-unit'] });
    bucket = new S3Bucket({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: 'sotto-unit',
      prefix: 'p/',
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      forcePathStyle: true,
      ca: undefined,
    });
    store = new S3ObjectStore(bucket, 'audio', 'blob');
  });
  afterAll(async () => {
    bucket?.close();
    await s3?.close();
  });

  it('writes a multipart object, reads any range of it, and a failed source leaves no object', async () => {
    const bytes = randomBytes(PART_BYTES * 2 + 12345);
    const id = randomUUID();
    await store.write(org, id, Readable.from([bytes.subarray(0, 5_000_000), bytes.subarray(5_000_000)]), []);
    expect(await s3.keys('p/audio/', 'sotto-unit')).toEqual([`p/audio/${org}/${id}.bin`]);
    const head = await store.head(org, id, 10);
    expect(head?.size).toBe(bytes.length);
    expect(head?.bytes.equals(bytes.subarray(0, 10))).toBe(true);
    for (const [start, end] of [
      [0, 0],
      [PART_BYTES - 5, PART_BYTES + 5],
      [bytes.length - 100, bytes.length - 1],
    ] as const) {
      const parts: Buffer[] = [];
      for await (const c of store.readRange(org, id, start, end)) parts.push(c as Buffer);
      expect(Buffer.concat(parts).equals(bytes.subarray(start, end + 1))).toBe(true);
    }
    expect(await store.sha256(org, id)).toBe(sha(bytes));

    // A source that fails after 1.5 parts: the multipart upload is aborted, nothing is visible.
    const broken = randomUUID();
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(PART_BYTES);
        yield randomBytes(PART_BYTES / 2);
        throw new Error('source died');
      })(),
    );
    await expect(store.write(org, broken, failing, [])).rejects.toThrow('source died');
    // A small object that fails before its single PUT: nothing either.
    const small = Readable.from(
      (async function* () {
        yield randomBytes(1000);
        throw new Error('small source died');
      })(),
    );
    await expect(store.write(org, randomUUID(), small, [])).rejects.toThrow('small source died');
    expect(await s3.keys('p/audio/', 'sotto-unit')).toEqual([`p/audio/${org}/${id}.bin`]);
    expect(await store.head(org, broken, 10)).toBeUndefined();

    expect((await store.list()).map((e) => [e.orgId, e.id])).toEqual([[org, id]]);
    expect(await store.removeOrg(org)).toBe(1);
    expect(await s3.keys('p/', 'sotto-unit')).toEqual([]);
    expect(() => store.key(org, '../x')).toThrow('invalid blob id');
  });

  it('says whether the bucket is usable: ok, missing, refused credentials', async () => {
    expect(await bucket.check()).toBe('ok');
    const missing = new S3Bucket({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: 'no-such-bucket',
      prefix: '',
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      forcePathStyle: true,
      ca: undefined,
    });
    const denied = new S3Bucket({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      bucket: 'sotto-unit',
      prefix: '',
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: 'wrong-secret' },
      forcePathStyle: true,
      ca: undefined,
    });
    expect(await missing.check()).toBe('no_bucket');
    expect(await denied.check()).toBe('denied');
    missing.close();
    denied.close();
  });
});

describe.skipIf(!hasCorpus)(
  `SOTTO_STORAGE=s3: audio, exports, archive, deletions (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let s3: S3TestServer;
    let proxy: Awaited<ReturnType<typeof cuttingProxy>>;
    let t: TestApp;
    let dataDir: string;
    let owner: TestUser;
    let other: TestUser;
    const ip = freshIp();
    const wav = () => readFileSync(corpusFile('call-02', 'wav'));
    const solo = () => readFileSync(corpusFile('solo-03', 'wav'));
    const prefix = 'node/';
    const inject = (
      u: TestUser,
      method: 'GET' | 'POST' | 'DELETE' | 'PATCH',
      url: string,
      extra: object = {},
    ) => t.app.inject({ method, url, headers: bearer(u.accessToken), remoteAddress: ip, ...extra });
    const orgKeys = async (orgId: string) => (await s3.keys(prefix)).filter((k) => k.split('/')[2] === orgId);

    beforeAll(async () => {
      s3 = await startS3Server({ buckets: ['sotto-data'] });
      proxy = await cuttingProxy(s3.port);
      const r = recordingEnv({
        ...s3.env({ prefix }),
        // Through the proxy: it counts what playback downloads and can cut uploads.
        SOTTO_S3_ENDPOINT: proxy.endpoint,
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      });
      dataDir = r.dataDir;
      t = await startTestApp({ env: r.env });
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      other = await createOrgWithUser(t.services, { role: 'owner' });
      for (const u of [owner, other])
        expect(
          (await inject(u, 'PATCH', '/api/v1/org/settings', { payload: { storeAudio: true } })).statusCode,
        ).toBe(200);
    }, 60_000);
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.services.orgExports.stop();
      await t?.close();
      await proxy?.close();
      await s3?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    /** The deletion receipt's hash of the sealed blob (audit log, ids and hashes only). */
    const receiptBlobHash = async (id: string) =>
      (
        await withSystem(t.db, (tx) =>
          tx.query<{ details: { sha256: Record<string, string> } }>(
            `SELECT details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`,
            [id],
          ),
        )
      ).rows[0]?.details.sha256.audioBlob;

    it('upload → sealed object in the bucket → transcribed from it → played back → delete removes it', async () => {
      const original = solo();
      const res = await upload(t, owner.accessToken, ip, original);
      expect(res.statusCode, res.body).toBe(202);
      const id = res.json<{ id: string }>().id;
      // Deleted whatever happens, so a failure here does not leave an object for the next tests.
      try {
        const key = `${prefix}audio/${owner.orgId}/${id}.bin`;
        expect(await s3.keys(`${prefix}audio/`)).toEqual([key]);
        // Nothing on the local disk: no audio folder, no staged plaintext.
        expect(existsSync(path.join(dataDir, 'audio'))).toBe(false);
        expect(stagedFiles(dataDir)).toEqual([]);
        const sealed = (await s3.read(key))!;
        for (const at of [0, 44, Math.floor(original.length / 2), original.length - 64])
          expect(sealed.indexOf(original.subarray(at, at + 64))).toBe(-1);
        expect(sealed.indexOf('RIFF')).toBe(-1);

        await t.services.jobs.start();
        try {
          const done = await pollRecording(
            t,
            owner.accessToken,
            ip,
            id,
            (b) => b.status !== 'queued' && b.status !== 'processing',
            300_000,
          );
          expect(done.status, JSON.stringify(done)).toBe('done');
        } finally {
          await t.services.jobs.stop();
        }
        const transcript = await inject(owner, 'GET', `/api/v1/recordings/${id}/transcript`);
        expect(transcript.statusCode).toBe(200);
        expect(transcript.json<{ segments: unknown[] }>().segments.length).toBeGreaterThan(0);
        // Kept (storeAudio): still the same object, and it plays back byte-identical.
        expect((await s3.read(key))!.equals(sealed)).toBe(true);
        const full = await inject(owner, 'GET', `/api/v1/recordings/${id}/audio`);
        expect(full.statusCode).toBe(200);
        expect(full.rawPayload.equals(original)).toBe(true);

        const del = await inject(owner, 'DELETE', `/api/v1/recordings/${id}`);
        expect(del.statusCode, del.body).toBe(204);
        expect(await s3.keys(`${prefix}audio/`)).toEqual([]);
        // The receipt hashes the sealed object as it was in the bucket.
        expect(await receiptBlobHash(id)).toBe(sha(sealed));
      } finally {
        await inject(owner, 'DELETE', `/api/v1/recordings/${id}`);
      }
    }, 600_000);

    it('playback ranges fetch only the sealed chunks they need (Range GETs), never another org', async () => {
      const original = wav();
      const res = await upload(t, owner.accessToken, ip, original);
      expect(res.statusCode, res.body).toBe(202);
      const id = res.json<{ id: string }>().id;
      try {
        const sealed = (await s3.read(`${prefix}audio/${owner.orgId}/${id}.bin`))!;
        expect(sealed.length).toBeGreaterThan(10 * 64 * 1024);
        // Kept audio plays while its job waits.
        const full = await inject(owner, 'GET', `/api/v1/recordings/${id}/audio`);
        expect(full.statusCode).toBe(200);
        expect(full.rawPayload.equals(original)).toBe(true);
        // 100 bytes in the middle of a 1 MB recording: the header and one or two 64 KiB sealed
        // chunks cross the network, not the object.
        for (const start of [600_000, 65_500, original.length - 100]) {
          const before = proxy.downloaded();
          const part = await inject(owner, 'GET', `/api/v1/recordings/${id}/audio`, {
            headers: { ...bearer(owner.accessToken), range: `bytes=${start}-${start + 99}` },
          });
          expect(part.statusCode).toBe(206);
          expect(part.rawPayload.equals(original.subarray(start, start + 100))).toBe(true);
          const fetched = proxy.downloaded() - before;
          expect(fetched).toBeGreaterThan(100);
          expect(fetched).toBeLessThan(3 * 64 * 1024);
        }
        expect((await inject(other, 'GET', `/api/v1/recordings/${id}/audio`)).statusCode).toBe(404);
        expect((await inject(other, 'DELETE', `/api/v1/recordings/${id}`)).statusCode).toBe(404);
        expect((await inject(owner, 'DELETE', `/api/v1/recordings/${id}`)).statusCode).toBe(204);
        expect(await s3.keys(`${prefix}audio/`)).toEqual([]);
        expect(await receiptBlobHash(id)).toBe(sha(sealed));
      } finally {
        await inject(owner, 'DELETE', `/api/v1/recordings/${id}`);
      }
    }, 120_000);

    it('a connection cut mid-upload leaves no object (nor anything local), and the next upload works', async () => {
      proxy.cutEvery(200_000);
      try {
        const res = await upload(t, owner.accessToken, ip, wav());
        expect(res.statusCode).toBeGreaterThanOrEqual(500);
      } finally {
        proxy.cutEvery(undefined);
      }
      expect(proxy.cuts()).toBeGreaterThan(0);
      expect(await s3.keys(`${prefix}audio/`)).toEqual([]);
      expect(stagedFiles(dataDir)).toEqual([]);
      const list = await inject(owner, 'GET', '/api/v1/recordings');
      expect(list.json<{ items: unknown[] }>().items).toEqual([]);
      const ok = await upload(t, owner.accessToken, ip, wav());
      expect(ok.statusCode, ok.body).toBe(202);
      const id = ok.json<{ id: string }>().id;
      expect(await s3.keys(`${prefix}audio/`)).toEqual([`${prefix}audio/${owner.orgId}/${id}.bin`]);
      expect((await inject(owner, 'DELETE', `/api/v1/recordings/${id}`)).statusCode).toBe(204);
      expect(await s3.keys(`${prefix}audio/`)).toEqual([]);
    }, 120_000);

    it('org exports are sealed objects any node can serve; deleting one removes it', async () => {
      await seedTranscript(t.services, owner, {
        title: 'Exported',
        segments: [seg(1, 'S1', 0, 'hello bucket')],
      });
      const res = await inject(owner, 'POST', '/api/v1/org/export');
      expect(res.statusCode, res.body).toBe(202);
      const id = res.json<{ id: string }>().id;
      await t.services.orgExports.idle();
      const info = await inject(owner, 'GET', `/api/v1/org/exports/${id}`);
      expect(info.json<{ status: string }>().status).toBe('ready');
      const key = `${prefix}exports/${owner.orgId}/${id}.bin`;
      expect(await s3.keys(`${prefix}exports/`)).toEqual([key]);
      // Only the object: no final file, no scratch left in the local exports folder.
      expect(existsSync(path.join(dataDir, 'exports', owner.orgId, `${id}.bin`))).toBe(false);
      const sealed = (await s3.read(key))!;
      expect(sealed.indexOf('PK\u0003\u0004')).toBe(-1);
      const dl = await inject(owner, 'GET', `/api/v1/org/exports/${id}/download`);
      expect(dl.statusCode).toBe(200);
      expect(dl.rawPayload.subarray(0, 4).toString('latin1')).toBe('PK\u0003\u0004');
      expect(sha(dl.rawPayload)).toBe(info.json<{ sha256: string }>().sha256);
      expect((await inject(other, 'GET', `/api/v1/org/exports/${id}/download`)).statusCode).toBe(404);
      expect((await inject(owner, 'DELETE', `/api/v1/org/exports/${id}`)).statusCode).toBeLessThan(300);
      expect(await s3.keys(`${prefix}exports/`)).toEqual([]);
    }, 120_000);

    it('the cold archive goes to the bucket: archive, restore byte-identical, destroy with receipt', async () => {
      const id = await seedTranscript(t.services, owner, {
        title: 'Old session',
        segments: [seg(1, 'S1', 0, 'archived words')],
        createdAt: new Date(Date.now() - 400 * 24 * 3600 * 1000),
      });
      const plainDir = mkdtempSync(path.join(tmpdir(), 'sotto-s3-plain-'));
      const plain = path.join(plainDir, 'a.wav');
      const audioBytes = randomBytes(200_000);
      writeFileSync(plain, audioBytes);
      await t.services.audio.seal(owner.orgId, id, plain, 'audio/wav');
      rmSync(plainDir, { recursive: true, force: true });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, id))!;
      expect(archiveId).toBeDefined();
      expect(await s3.keys(`${prefix}archive/`)).toEqual([
        `${prefix}archive/${owner.orgId}/${archiveId}.audio`,
        `${prefix}archive/${owner.orgId}/${archiveId}.object`,
      ]);
      expect(await s3.keys(`${prefix}audio/`)).toEqual([]);
      expect(existsSync(path.join(dataDir, 'archive'))).toBe(false);

      expect((await inject(other, 'POST', `/api/v1/org/archive/${archiveId}/restore`)).statusCode).toBe(404);
      const restored = await inject(owner, 'POST', `/api/v1/org/archive/${archiveId}/restore`);
      expect(restored.statusCode, restored.body).toBe(200);
      expect(await s3.keys(`${prefix}archive/`)).toEqual([]);
      const played = await inject(owner, 'GET', `/api/v1/recordings/${id}/audio`);
      expect(played.statusCode).toBe(200);
      expect(played.rawPayload.equals(audioBytes)).toBe(true);

      const again = (await t.services.archive.archiveRecording(owner.orgId, id))!;
      const object = (await s3.read(`${prefix}archive/${owner.orgId}/${again}.object`))!;
      const del = await inject(owner, 'DELETE', `/api/v1/org/archive/${again}`);
      expect(del.statusCode, del.body).toBe(200);
      expect(del.json<{ contentSha256: string }>().contentSha256).toBe(sha(object));
      expect(await s3.keys(`${prefix}archive/`)).toEqual([]);
    }, 120_000);

    it('organization deletion removes every object of the org and none of another org', async () => {
      const victim = await createOrgWithUser(t.services, { role: 'owner' });
      expect(
        (await inject(victim, 'PATCH', '/api/v1/org/settings', { payload: { storeAudio: true } })).statusCode,
      ).toBe(200);
      const kept = await upload(t, other.accessToken, ip, wav());
      expect(kept.statusCode).toBe(202);
      const up = await upload(t, victim.accessToken, ip, wav());
      expect(up.statusCode).toBe(202);
      await seedTranscript(t.services, victim, { segments: [seg(1, 'S1', 0, 'to be shredded')] });
      const old = await seedTranscript(t.services, victim, {
        segments: [seg(1, 'S1', 0, 'old')],
        createdAt: new Date(Date.now() - 400 * 24 * 3600 * 1000),
      });
      await t.services.archive.archiveRecording(victim.orgId, old);
      expect((await inject(victim, 'POST', '/api/v1/org/export')).statusCode).toBe(202);
      await t.services.orgExports.idle();
      const areas = (keys: string[]) => [...new Set(keys.map((k) => k.split('/')[1]))].sort();
      expect(areas(await orgKeys(victim.orgId))).toEqual(['archive', 'audio', 'exports']);

      const password = `pw-${randomUUID()}`;
      const hash = await t.services.hasher.hash(password);
      const slug = await withSystem(t.db, async (tx) => {
        await tx.query('UPDATE users SET password_hash = $1 WHERE id = $2', [hash, victim.userId]);
        return (await tx.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = $1', [victim.orgId]))
          .rows[0]!.slug;
      });
      const res = await inject(victim, 'DELETE', '/api/v1/org', {
        payload: { confirm: slug, currentPassword: password },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(await orgKeys(victim.orgId)).toEqual([]);
      expect(await orgKeys(other.orgId)).toEqual([
        `${prefix}audio/${other.orgId}/${kept.json<{ id: string }>().id}.bin`,
      ]);
    }, 120_000);

    it('never logs the S3 credentials', () => {
      expect(t.logs.length).toBeGreaterThan(0);
      expect(t.logs.join('\n')).not.toContain(S3_SECRET_KEY);
      for (const line of t.logs) expect(line).not.toMatch(/secretAccessKey|SOTTO_S3_SECRET/);
    });
  },
);

describe('an S3 endpoint over TLS with a private CA (SOTTO_S3_CA_FILE)', () => {
  let s3: S3TestServer;
  let dir: string;
  let certFile: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-s3-tls-'));
    const cert = await ensureSelfSignedCert(dir, ['127.0.0.1']);
    certFile = cert.certFile;
    s3 = await startS3Server({ buckets: ['sotto-tls'], tls: { key: cert.key, cert: cert.cert } });
  });
  afterAll(async () => {
    await s3?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('trusts the endpoint with the configured CA, and refuses it without', async () => {
    expect(s3.endpoint).toMatch(/^https:/);
    const config = loadConfig({
      SOTTO_ENV: 'production',
      SOTTO_PUBLIC_URL: 'https://sotto.example',
      SOTTO_MASTER_KEY: testMasterKey(),
      ...s3.env(),
      SOTTO_S3_CA_FILE: certFile,
    });
    if (config.storage.kind !== 's3') throw new Error('expected s3 storage');
    const trusted = new S3Bucket(config.storage.s3);
    const untrusted = new S3Bucket({ ...config.storage.s3, ca: undefined });
    try {
      expect(await trusted.check()).toBe('ok');
      await trusted.put('tls/probe.bin', Readable.from([Buffer.from('sealed bytes')]));
      expect((await s3.keys('tls/', 'sotto-tls')).length).toBe(1);
      // The system's CAs do not know this certificate: the connection is refused, not downgraded.
      expect(await untrusted.check()).toBe('failed');
    } finally {
      trusted.close();
      untrusted.close();
    }
  });
});

describe(`a missing or refused bucket (${backendLabel})`, () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['sotto-present'] });
  });
  afterAll(async () => {
    await s3?.close();
  });

  for (const [what, env, status] of [
    ['missing', { SOTTO_S3_BUCKET: 'sotto-absent' }, 'no_bucket'],
    ['refused', { SOTTO_S3_SECRET_ACCESS_KEY: 'not-the-secret' }, 'denied'],
  ] as const) {
    it(`a ${what} bucket: /readyz answers 503 with storage: ${status}`, async () => {
      const t = await startTestApp({ env: { ...s3.env(), ...env } });
      try {
        const res = await t.app.inject({ method: 'GET', url: '/readyz' });
        expect(res.statusCode).toBe(503);
        expect(res.json<{ checks: { storage: string } }>().checks.storage).toBe(status);
        expect(res.body).not.toContain('not-the-secret');
      } finally {
        await t.close();
      }
    });
  }

  it('a usable bucket: ready', async () => {
    const t = await startTestApp({ env: s3.env() });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.json<{ checks: { storage: string } }>().checks.storage).toBe('ok');
    } finally {
      await t.close();
    }
  });
});
