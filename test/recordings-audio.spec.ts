import { randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/domain/errors.js';
import { startTransport, type Transport } from '../src/http/listen.js';
import { ensureSelfSignedCert, type SelfSignedResult } from '../src/adapters/network/tls.adapter.js';
import { UploadFileStore } from '../src/adapters/storage/upload-file.adapter.js';
import { createLocalWorker } from '../src/app-jobs.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  type SupportUser,
  type TestUser,
} from './helpers/fixtures.js';
import { pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Audio at rest, end to end: uploads are sealed before they are queued (no plaintext on disk
 * while a job waits), the storeAudio policy decides what survives a job, kept audio plays back
 * byte-identically over real HTTPS with RFC 9110 ranges, and nothing — failed seals, failed
 * runs, killed processes — leaves audio behind.
 */
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe.skipIf(!hasCorpus)(`audio at rest (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`, () => {
  let t: TestApp;
  let dataDir: string;
  let tlsDir: string;
  let cert: SelfSignedResult;
  let transport: Transport;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  let support: SupportUser;
  const ip = freshIp();
  const wav = () => readFileSync(corpusFile('solo-03', 'wav'));
  const flac = () => readFileSync(corpusFile('solo-03', 'flac'));

  const blobFile = (orgId: string, id: string) => path.join(dataDir, 'audio', orgId, `${id}.bin`);
  const workFiles = () => {
    const dir = path.join(dataDir, 'tmp', 'work');
    return existsSync(dir) ? readdirSync(dir) : [];
  };
  const audioRow = async (id: string) =>
    (
      await t.db.query<{ content_type: string; plain_size: string | number }>(
        'SELECT content_type, plain_size FROM recording_audio WHERE recording_id = $1',
        [id],
      )
    ).rows[0];
  const inject = (u: TestUser, method: 'GET' | 'DELETE', url: string, headers: Record<string, string> = {}) =>
    t.app.inject({ method, url, headers: { ...bearer(u.accessToken), ...headers }, remoteAddress: ip });
  const done = (token: string, id: string) =>
    pollRecording(t, token, ip, id, (b) => b.status === 'done' || b.status === 'failed', 300_000);

  /** GET over the real TLS listener; rejects when the connection breaks mid-body. */
  const httpsGet = (urlPath: string, headers: Record<string, string>): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: transport.address.port,
          path: urlPath,
          method: 'GET',
          headers: { host: 'sotto.test', ...headers },
          ca: cert.cert,
          servername: 'sotto.test',
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('aborted', () => reject(new Error('response aborted')));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(parts);
            // A body shorter than announced is a broken transfer, not a success.
            const announced = res.headers['content-length'];
            if (announced !== undefined && Number(announced) !== body.length)
              return reject(new Error('body shorter than content-length'));
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  const play = (u: TestUser | SupportUser, id: string, range?: string, org?: string) =>
    httpsGet(`/api/v1/recordings/${id}/audio`, {
      ...bearer(u.accessToken, org),
      ...(range !== undefined ? { range } : {}),
    });

  const setStoreAudio = async (on: boolean) => {
    const res = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: bearer(owner.accessToken),
      payload: { storeAudio: on },
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(200);
  };

  /** The sealed file holds none of the plaintext: no 64-byte window of it, no container magic. */
  const expectNoPlaintext = (sealed: Buffer, original: Buffer) => {
    for (const at of [0, 44, Math.floor(original.length / 2), original.length - 64]) {
      expect(sealed.indexOf(original.subarray(at, at + 64)), `window at ${at}`).toBe(-1);
    }
    for (const magic of ['RIFF', 'WAVE', 'fLaC', 'OggS']) expect(sealed.indexOf(magic)).toBe(-1);
  };

  beforeAll(async () => {
    const r = recordingEnv({
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      SOTTO_HOST: '127.0.0.1',
      SOTTO_HTTPS_PORT: '0',
      SOTTO_HTTP_PORT: '0',
    });
    dataDir = r.dataDir;
    t = await startTestApp({ env: r.env });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    support = await createSupportUserFixture(t.services);
    tlsDir = mkdtempSync(path.join(tmpdir(), 'sotto-audio-tls-'));
    cert = await ensureSelfSignedCert(path.join(tlsDir, 'tls'), ['sotto.test']);
    transport = await startTransport({ services: t.services, tls: cert });
  });
  afterAll(async () => {
    await t?.services.jobs.stop();
    await transport?.close();
    await t?.close();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  let keptWav: string;
  let keptFlac: string;

  it('storeAudio off: queued audio waits sealed (never plain, not playable); after the job nothing is left', async () => {
    const original = wav();
    const res = await upload(t, member.accessToken, ip, original);
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().id as string;
    expect(stagedFiles(dataDir)).toEqual([]);
    const sealed = readFileSync(blobFile(owner.orgId, id));
    expectNoPlaintext(sealed, original);
    const row = await audioRow(id);
    expect(row?.content_type).toBe('audio/wav');
    expect(Number(row?.plain_size)).toBe(original.length);
    const job = await t.db.query<{ audio_path: string | null }>(
      'SELECT audio_path FROM recording_jobs WHERE recording_id = $1',
      [id],
    );
    expect(job.rows).toEqual([{ audio_path: null }]);
    // Transient processing material: not served while the org does not keep audio.
    expect((await inject(owner, 'GET', `/api/v1/recordings/${id}/audio`)).statusCode).toBe(404);

    await t.services.jobs.start();
    try {
      expect((await done(member.accessToken, id)).status).toBe('done');
    } finally {
      await t.services.jobs.stop();
    }
    expect(existsSync(blobFile(owner.orgId, id))).toBe(false);
    expect(await audioRow(id)).toBeUndefined();
    expect(workFiles()).toEqual([]);
    expect(stagedFiles(dataDir)).toEqual([]);
    const gone = await inject(owner, 'GET', `/api/v1/recordings/${id}/audio`);
    expect(gone.statusCode).toBe(404);
    expect(gone.json().code).toBe('not_found');
  }, 600_000);

  it('storeAudio on: the sealed blob is kept after the job and holds no plaintext', async () => {
    await setStoreAudio(true);
    const a = await upload(t, member.accessToken, ip, wav());
    const b = await upload(t, member.accessToken, ip, flac());
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    keptWav = a.json().id;
    keptFlac = b.json().id;
    // Kept audio is playable while its job still waits.
    const early = await play(member, keptWav);
    expect(early.status).toBe(200);
    expect(early.body.equals(wav())).toBe(true);
    await t.services.jobs.start();
    try {
      expect((await done(member.accessToken, keptWav)).status).toBe('done');
      expect((await done(member.accessToken, keptFlac)).status).toBe('done');
    } finally {
      await t.services.jobs.stop();
    }
    expectNoPlaintext(readFileSync(blobFile(owner.orgId, keptWav)), wav());
    expectNoPlaintext(readFileSync(blobFile(owner.orgId, keptFlac)), flac());
    expect((await audioRow(keptFlac))?.content_type).toBe('audio/flac');
    expect(workFiles()).toEqual([]);
    expect(stagedFiles(dataDir)).toEqual([]);
  }, 600_000);

  it('plays back over real HTTPS: whole file and ranges byte-identical, with the right headers', async () => {
    for (const [id, original, type] of [
      [keptWav, wav(), 'audio/wav'],
      [keptFlac, flac(), 'audio/flac'],
    ] as const) {
      const full = await play(member, id);
      expect(full.status).toBe(200);
      expect(full.body.equals(original)).toBe(true);
      expect(full.headers['content-type']).toBe(type);
      expect(full.headers['content-length']).toBe(String(original.length));
      expect(full.headers['accept-ranges']).toBe('bytes');
      expect(full.headers['cache-control']).toBe('private, no-store');
      expect(full.headers['content-range']).toBeUndefined();

      const size = original.length;
      const ranges: [string, number, number][] = [
        ['bytes=0-0', 0, 0],
        ['bytes=0-99', 0, 99],
        ['bytes=65530-65550', 65_530, 65_550], // across a chunk boundary
        ['bytes=65536-131071', 65_536, 131_071], // exactly one chunk
        ['bytes=1000-', 1000, size - 1],
        ['bytes=-500', size - 500, size - 1],
        [`bytes=${size - 1}-${size + 1000}`, size - 1, size - 1],
        ['bytes=-99999999', 0, size - 1],
      ];
      for (let i = 0; i < 6; i++) {
        const s = Math.floor(Math.random() * size);
        const e = s + Math.floor(Math.random() * (size - s));
        ranges.push([`bytes=${s}-${e}`, s, e]);
      }
      for (const [header, start, end] of ranges) {
        const res = await play(member, id, header);
        expect(res.status, header).toBe(206);
        expect(res.headers['content-range'], header).toBe(`bytes ${start}-${end}/${size}`);
        expect(res.headers['content-length'], header).toBe(String(end - start + 1));
        expect(res.headers['content-type']).toBe(type);
        expect(res.headers['cache-control']).toBe('private, no-store');
        expect(res.body.equals(original.subarray(start, end + 1)), header).toBe(true);
      }
    }
  });

  it('416 for unsatisfiable ranges, the whole file for several ranges, and hostile headers never 500', async () => {
    const size = wav().length;
    for (const header of [
      `bytes=${size}-`,
      `bytes=${size}-${size + 10}`,
      'bytes=-0',
      'bytes=99999999999999999999-',
    ]) {
      const res = await play(member, keptWav, header);
      expect(res.status, header).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${size}`);
      expect(JSON.parse(res.body.toString()).code).toBe('range_not_satisfiable');
    }
    const multi = await play(member, keptWav, 'bytes=0-1,5-6');
    expect(multi.status).toBe(200);
    expect(multi.body.equals(wav())).toBe(true);
    const hostile = [
      'garbage',
      'bytes=',
      'bytes=-',
      'bytes=--1',
      'bytes=-1-2',
      'bytes=5-1',
      'bytes=1.5-2',
      'bytes=0x10-0x20',
      'bytes=1e9-',
      `bytes=${'9'.repeat(150)}-`,
      `bytes=0-${'9'.repeat(150)}`,
      `bytes=-${'9'.repeat(150)}`,
      'bytes=9007199254740993-9007199254740995',
      'bytes=-9007199254740993',
      'bytes=\u00a0 0-1',
      'items=0-1',
      'bytes=0-1'.repeat(40),
      'x'.repeat(4000),
      ',,,,',
    ];
    for (const header of hostile) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings/${keptWav}/audio`,
        headers: { ...bearer(member.accessToken), range: header },
        remoteAddress: ip,
      });
      expect([200, 206, 400, 416], header).toContain(res.statusCode);
      if (res.statusCode === 200) expect(res.rawPayload.equals(wav())).toBe(true);
    }
  });

  it('is visible exactly as the transcript is: owner and granted support yes; colleague, other org 404', async () => {
    expect((await play(owner, keptWav, 'bytes=0-3')).status).toBe(206);
    // The id in either case (the key's AAD and the file name use the stored, lower-case id).
    const upper = await play(owner, keptWav.toUpperCase(), 'bytes=0-3');
    expect(upper.status).toBe(206);
    expect(upper.body.equals(wav().subarray(0, 4))).toBe(true);
    for (const u of [colleague, other]) {
      const res = await play(u, keptWav);
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body.toString()).code).toBe('not_found');
    }
    expect((await play(support, keptWav, undefined, owner.orgId)).status).not.toBe(200);
    const grant = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
      remoteAddress: ip,
    });
    expect(grant.statusCode).toBe(201);
    const viaGrant = await play(support, keptWav, 'bytes=-10', owner.orgId);
    expect(viaGrant.status).toBe(206);
    expect(viaGrant.body.equals(wav().subarray(-10))).toBe(true);
    // Support may listen but never delete the customer's audio.
    const del = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/recordings/${keptWav}/audio`,
      headers: bearer(support.accessToken, owner.orgId),
      remoteAddress: ip,
    });
    expect(del.statusCode).toBe(403);
    const anonymous = await httpsGet(`/api/v1/recordings/${keptWav}/audio`, {});
    expect(anonymous.status).toBe(401);
  });

  it('never serves tampered or moved audio', async () => {
    const file = blobFile(owner.orgId, keptWav);
    const good = readFileSync(file);
    try {
      // A flipped byte inside chunk 1: ranges avoiding it still work, anything touching it fails.
      const flipped = Buffer.from(good);
      flipped[32 + 65_536 + 28 + 100]! ^= 0x40;
      writeFileSync(file, flipped);
      expect((await play(member, keptWav, 'bytes=0-99')).status).toBe(206);
      // Before the first byte: a 500; after it (the whole file): a cut connection.
      const touching = await play(member, keptWav, 'bytes=65536-65600');
      expect(touching.status).toBe(500);
      expect(JSON.parse(touching.body.toString()).code).toBe('decryption_failed');
      await expect(play(member, keptWav)).rejects.toThrow();
      // Truncated, extended, header changed: refused before any byte is sent.
      for (const bad of [
        good.subarray(0, good.length - 1),
        Buffer.concat([good, good.subarray(32, 32 + 65_564)]),
      ]) {
        writeFileSync(file, bad);
        const res = await play(member, keptWav, 'bytes=0-9');
        expect(res.status).toBe(500);
        expect(JSON.parse(res.body.toString()).code).toBe('decryption_failed');
      }
      // Another recording's blob under this id (a different content key and id in the AAD).
      writeFileSync(file, readFileSync(blobFile(owner.orgId, keptFlac)));
      const moved = await play(member, keptWav, 'bytes=0-9');
      expect(moved.status).toBe(500);
    } finally {
      writeFileSync(file, good);
    }
    expect((await play(member, keptWav)).body.equals(wav())).toBe(true);
    // Logs name ids and codes, never bytes of the audio.
    expect(t.logs.join('\n')).not.toContain('RIFF');
  });

  it('DELETE /audio: owner or admin only, audited with ids only, then 404', async () => {
    expect((await inject(member, 'DELETE', `/api/v1/recordings/${keptFlac}/audio`)).statusCode).toBe(403);
    expect((await inject(other, 'DELETE', `/api/v1/recordings/${keptFlac}/audio`)).statusCode).toBe(404);
    const res = await inject(owner, 'DELETE', `/api/v1/recordings/${keptFlac}/audio`);
    expect(res.statusCode, res.body).toBe(204);
    expect(existsSync(blobFile(owner.orgId, keptFlac))).toBe(false);
    expect(await audioRow(keptFlac)).toBeUndefined();
    expect((await inject(owner, 'GET', `/api/v1/recordings/${keptFlac}/audio`)).statusCode).toBe(404);
    expect((await inject(owner, 'DELETE', `/api/v1/recordings/${keptFlac}/audio`)).statusCode).toBe(404);
    // The recording and its transcript stay.
    expect((await inject(member, 'GET', `/api/v1/recordings/${keptFlac}/transcript`)).statusCode).toBe(200);
    const audit = await t.db.query<{ actor_id: string; details: unknown }>(
      `SELECT actor_id, details FROM audit_log WHERE action = 'recording.audio_deleted' AND target_id = $1`,
      [keptFlac],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]!.actor_id).toBe(owner.userId);
    expect(JSON.stringify(audit.rows[0]!.details ?? {})).not.toMatch(/audio\/|flac|bin/);
  });

  it('deleting a recording removes its blob, whether queued or kept', async () => {
    const queued = (await upload(t, member.accessToken, ip, wav())).json().id as string;
    expect(existsSync(blobFile(owner.orgId, queued))).toBe(true);
    // Its job still needs the audio: only deleting the recording stops it.
    const early = await inject(owner, 'DELETE', `/api/v1/recordings/${queued}/audio`);
    expect(early.statusCode).toBe(409);
    expect(existsSync(blobFile(owner.orgId, queued))).toBe(true);
    for (const id of [queued, keptWav]) {
      expect((await inject(member, 'DELETE', `/api/v1/recordings/${id}`)).statusCode).toBe(204);
      expect(existsSync(blobFile(owner.orgId, id))).toBe(false);
      expect(await audioRow(id)).toBeUndefined();
    }
  });

  it('a failed pipeline run leaves no decrypted copy and, with storeAudio off, no blob', async () => {
    const org = await createOrgWithUser(t.services, { role: 'owner' });
    const seen: { file: string; same: boolean }[] = [];
    const worker = createLocalWorker({
      db: t.db,
      keys: t.services.keys,
      uploads: new UploadFileStore(path.join(dataDir, 'tmp', 'uploads')),
      audio: t.services.audio,
      pipeline: async () => ({
        run: async (input: { file: string }) => {
          // The pipeline gets a private decrypted copy, identical to the upload.
          seen.push({ file: input.file, same: readFileSync(input.file).equals(wav()) });
          throw new AppError('undecodable_audio', 'the decoder gave up');
        },
      }),
      clock: t.services.clock,
      logger: t.services.logger,
      opts: {
        pollMs: 50,
        leaseSeconds: 30,
        maxAttempts: 3,
        backoffSeconds: 1,
        heartbeatMs: 500,
        sweepOlderThanMs: 3600_000,
      },
    });
    const id = (await upload(t, org.accessToken, ip, wav())).json().id as string;
    await worker.start();
    try {
      const failed = await pollRecording(t, org.accessToken, ip, id, (b) => b.status === 'failed');
      expect(failed.error).toMatch(/decoded/);
    } finally {
      await worker.stop();
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]!.same).toBe(true);
    expect(path.dirname(seen[0]!.file)).toBe(path.join(dataDir, 'tmp', 'work'));
    expect(existsSync(seen[0]!.file)).toBe(false);
    expect(workFiles()).toEqual([]);
    expect(existsSync(blobFile(org.orgId, id))).toBe(false);
    expect(await audioRow(id)).toBeUndefined();
  });

  it('a failed seal leaves nothing behind: no blob, no row, no staged file', async () => {
    const org = await createOrgWithUser(t.services, { role: 'owner' });
    const count = async () =>
      Number(
        (
          await t.db.query<{ n: string }>('SELECT count(*) AS n FROM recordings WHERE org_id = $1', [
            org.orgId,
          ])
        ).rows[0]!.n,
      );
    // The blob cannot be written (its folder's place is taken by a file).
    const blocker = path.join(dataDir, 'audio', org.orgId);
    mkdirSync(path.dirname(blocker), { recursive: true });
    writeFileSync(blocker, 'not a folder');
    const res = await upload(t, org.accessToken, ip, wav());
    expect(res.statusCode).toBe(500);
    expect(stagedFiles(dataDir)).toEqual([]);
    expect(await count()).toBe(0);
    rmSync(blocker);
    // The blob is written but the transaction storing its row fails.
    const audio = t.services.audio as unknown as { attach: (...a: unknown[]) => Promise<void> };
    const real = audio.attach;
    audio.attach = () => Promise.reject(new Error('database went away'));
    try {
      const res2 = await upload(t, org.accessToken, ip, wav());
      expect(res2.statusCode).toBe(500);
    } finally {
      audio.attach = real;
    }
    expect(stagedFiles(dataDir)).toEqual([]);
    expect(await count()).toBe(0);
    const left = path.join(dataDir, 'audio', org.orgId);
    expect(existsSync(left) ? readdirSync(left) : []).toEqual([]);
  });

  it('the start-up sweep removes old orphans, temp files and work copies, and keeps audio still owned', async () => {
    // One kept recording (storeAudio is still on) whose blob must survive.
    const kept = (await upload(t, member.accessToken, ip, wav())).json().id as string;
    const orgDir = path.join(dataDir, 'audio', owner.orgId);
    const orphan = path.join(orgDir, `${randomUUID()}.bin`);
    const temp = path.join(orgDir, `.${randomUUID()}.${randomUUID()}.tmp`);
    const youngOrphan = path.join(orgDir, `${randomUUID()}.bin`);
    const workDir = path.join(dataDir, 'tmp', 'work');
    mkdirSync(workDir, { recursive: true });
    const work = path.join(workDir, `${randomUUID()}.audio`);
    for (const f of [orphan, temp, youngOrphan, work]) writeFileSync(f, randomBytes(100));
    const old = (Date.now() - 2 * 3600_000) / 1000;
    for (const f of [orphan, temp, work, blobFile(owner.orgId, kept)]) utimesSync(f, old, old);

    await t.services.jobs.start(); // the sweep runs first
    await t.services.jobs.stop();
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(work)).toBe(false);
    // Young files may belong to a seal in progress (on this or another node).
    expect(existsSync(youngOrphan)).toBe(true);
    // Owned by a row: kept however old.
    expect(existsSync(blobFile(owner.orgId, kept))).toBe(true);
    rmSync(youngOrphan);
  });
});
