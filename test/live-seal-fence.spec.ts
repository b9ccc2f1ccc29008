import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWav } from '../src/audio/wav.js';
import { withTenant } from '../src/db/tenant.js';
import { liveRecordingRepository } from '../src/repositories/live/live-recording.repository.js';
import { SpoolFencedError } from '../src/adapters/redis/live-spool-replica.adapter.js';
import { LiveSpoolStore } from '../src/adapters/storage/live-spool.adapter.js';
import { recordingAudioRepository } from '../src/repositories/recordings/recording-audio.repository.js';
import { UploadFileStore } from '../src/adapters/storage/upload-file.adapter.js';
import { sealLiveRecording, type FinaliseDeps } from '../src/services/live/live-finalise.js';
import { LiveSpools, type StreamSpool } from '../src/services/live/live-spool.js';
import { actorOf, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { startS3Server, type S3TestServer } from './helpers/s3-server.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * The fence on a live recording's seal (docs/live.md, "Multiple nodes"): two nodes finalise the
 * same recording, each from its own spool on its own disk, sharing the database and the audio
 * store (real files). Node A started holding the session first (an older generation) and stalled;
 * node B took it over (a newer generation) and received more audio. Whichever seals first, the
 * recording's audio is B's, A's sealed copy is deleted, and A marks nothing.
 */
const FRAME = 3200;

/** PCM16 frame `i`: every sample tells which frame it came from. */
const frame = (i: number) => {
  const b = Buffer.alloc(FRAME);
  for (let s = 0; s < FRAME / 2; s++) b.writeInt16LE(((i + 1) * 977 + s) % 30000, s * 2);
  return b;
};
/** The bytes of frames 0 … n-1, as the WAV must hold them. */
const framesUpTo = (n: number) => Buffer.concat(Array.from({ length: n }, (_, i) => frame(i)));
const bytesOf = (pcm: Int16Array) => Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);

describe.each(['local', 's3'] as const)(`live seal fence, %s audio store (${backendLabel})`, (storage) => {
  let t: TestApp;
  let dir: string;
  let user: TestUser;
  let s3: S3TestServer | undefined;
  const prefix = 'fence/';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-seal-fence-'));
    if (storage === 's3') s3 = await startS3Server({ buckets: ['sotto-data'] });
    t = await startTestApp({ env: { SOTTO_DATA_DIR: dir, ...s3?.env({ prefix }) } });
    user = await createOrgWithUser(t.services);
  });
  afterAll(async () => {
    await t?.close();
    await s3?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * One node: its own spool folder (no Redis copy), the app's database, keys and audio store.
   * `stall`: its stop pauses there once it has read its spool back and built the WAV, right
   * before it seals (`reached` resolves then): the window no claim check covers.
   */
  const node = (
    name: string,
    stall?: { reached: () => void; until: Promise<void> },
  ): FinaliseDeps & { spools: LiveSpools } => {
    const uploads = new UploadFileStore(path.join(dir, name, 'uploads'));
    return {
      db: t.db,
      audit: t.services.audit,
      keys: t.services.keys,
      audio: t.services.audio,
      uploads: {
        save: async (source, maxBytes) => {
          const staged = await uploads.save(source, maxBytes);
          if (stall) {
            stall.reached();
            await stall.until;
          }
          return staged;
        },
      },
      spools: new LiveSpools(
        t.db,
        t.services.keys,
        new LiveSpoolStore(path.join(dir, name, 'live')),
        t.services.clock,
      ),
      clock: t.services.clock,
      logger: { info: () => undefined, warn: () => undefined },
    };
  };

  /** The node starts holding the session (its generation), and spools `frames` frames. */
  async function hold(
    d: ReturnType<typeof node>,
    id: string,
    frames: number,
  ): Promise<{ generation: number; spool: StreamSpool }> {
    const generation = await d.spools.takeGeneration(user.orgId, id);
    expect(generation).toBeGreaterThan(0);
    const key = await d.spools.key(user.orgId, id);
    const spool = await d.spools.create(
      user.orgId,
      id,
      key,
      { label: 'Ann', offsetSamples: 0, n: 0 },
      () => ({ publishedTo: 0, segmentSeq: 0 }),
      (err) => {
        throw err;
      },
    );
    for (let i = 0; i < frames; i++) spool.add(frame(i));
    await spool.flush();
    return { generation: generation!, spool };
  }

  const seal = (d: FinaliseDeps, id: string, held: { generation: number; spool?: StreamSpool }) =>
    sealLiveRecording(
      d,
      {
        orgId: user.orgId,
        recordingId: id,
        spools: held.spool ? [held.spool] : [],
        opening: [],
        generation: held.generation,
      },
      'stopped',
    );

  async function newRecording(): Promise<string> {
    return (await t.services.live.create(actorOf(user, 'owner'), {})).id;
  }

  async function state(id: string) {
    return withTenant(t.db, { orgId: user.orgId, userId: null }, async (tx) => {
      const { rows } = await tx.query<{ status: string; jobs: number }>(
        `SELECT r.status, (SELECT count(*)::int FROM recording_jobs j WHERE j.recording_id = r.id) AS jobs
           FROM recordings r WHERE r.id = $1`,
        [id],
      );
      return { ...rows[0]!, blobId: (await recordingAudioRepository.find(tx, id))?.blobId };
    });
  }

  /** The recording's audio as the store serves it (decrypted, checked against its row). */
  async function storedPcm(id: string): Promise<Int16Array> {
    const { stream } = await t.services.audio.openPlain(user.orgId, id);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return readWav(Buffer.concat(chunks)).channels[0]!;
  }

  /** Every object of the org's audio (finished blobs and any temp file), by file name. */
  const blobFiles = async () => {
    if (s3) {
      const area = `${prefix}audio/${user.orgId}/`;
      return (await s3.keys(area)).map((k) => k.slice(area.length)).sort();
    }
    const d = path.join(dir, 'audio', user.orgId);
    return existsSync(d) ? readdirSync(d).sort() : [];
  };
  /** A sealed blob's bytes; undefined once it is gone. */
  const blobBytes = async (blobId: string) => {
    if (s3) return s3.read(`${prefix}audio/${user.orgId}/${blobId}.bin`);
    const file = path.join(dir, 'audio', user.orgId, `${blobId}.bin`);
    return existsSync(file) ? readFileSync(file) : undefined;
  };

  it('the older generation sealing LAST is refused: the audio stays the newer one, its own blob is deleted', async () => {
    const id = await newRecording();
    let reached!: () => void;
    const atSeal = new Promise<void>((res) => (reached = res));
    let wake!: () => void;
    const a = node('node-a', { reached, until: new Promise((res) => (wake = res)) });
    const b = node('node-b');
    const heldA = await hold(a, id, 5);
    const before = await blobFiles();
    // A stops: it has read its spool back and built the WAV, then stalls right before the seal.
    const sealA = seal(a, id, heldA);
    sealA.catch(() => undefined);
    await atSeal;
    // Meanwhile B takes the session over, receives more audio, stops and seals.
    const heldB = await hold(b, id, 12);
    expect(heldB.generation).toBeGreaterThan(heldA.generation);
    await expect(seal(b, id, heldB)).resolves.toBe('queued');
    const afterB = await state(id);
    expect(afterB).toMatchObject({ status: 'queued', jobs: 1 });
    // A wakes and seals last: into a blob of its own, refused by the fence, that blob deleted.
    wake();
    await expect(sealA).rejects.toBeInstanceOf(SpoolFencedError);

    expect(await state(id)).toEqual(afterB);
    const pcm = await storedPcm(id);
    expect(pcm.length).toBe(12 * (FRAME / 2));
    expect(bytesOf(pcm)).toEqual(framesUpTo(12));
    const added = (await blobFiles()).filter((f) => !before.includes(f));
    expect(added).toEqual([`${afterB.blobId}.bin`]);
  });

  it('the older generation sealing FIRST is refused too: the recording stays live for the newer one', async () => {
    const id = await newRecording();
    const a = node('node-a');
    const b = node('node-b');
    const heldA = await hold(a, id, 4);
    const heldB = await hold(b, id, 9);
    const before = await blobFiles();

    await expect(seal(a, id, heldA)).rejects.toBeInstanceOf(SpoolFencedError);
    expect(await state(id)).toMatchObject({ status: 'live', jobs: 0, blobId: undefined });
    expect(await blobFiles()).toEqual(before);
    // A let the session go untouched: B's spool (and the spool row) are still there.
    expect(await b.spools.exists(user.orgId, id)).toBe(true);

    await expect(seal(b, id, heldB)).resolves.toBe('queued');
    const pcm = await storedPcm(id);
    expect(bytesOf(pcm)).toEqual(framesUpTo(9));
  });

  it("a stale node's failure does not end the session either (no audio on its disk)", async () => {
    const id = await newRecording();
    const a = node('node-a');
    const b = node('node-b');
    const generationA = (await a.spools.takeGeneration(user.orgId, id))!;
    const heldB = await hold(b, id, 3);

    // A holds no spool of its own: on its own it would fail the recording with no_audio.
    await expect(seal(a, id, { generation: generationA })).rejects.toBeInstanceOf(SpoolFencedError);
    expect(await state(id)).toMatchObject({ status: 'live' });

    await expect(seal(b, id, heldB)).resolves.toBe('queued');
    // Nothing takes a generation once the recording is no longer live.
    expect(await a.spools.takeGeneration(user.orgId, id)).toBeUndefined();
    await withTenant(t.db, { orgId: user.orgId, userId: null }, async (tx) => {
      expect(await liveRecordingRepository.markQueued(tx, id, heldB.generation, new Date())).toBe(false);
    });
  });

  it('a recording deleted after a live stop: its own blob is hashed in the receipt and removed', async () => {
    const id = await newRecording();
    const a = node('node-a');
    await expect(seal(a, id, await hold(a, id, 3))).resolves.toBe('queued');
    const { blobId } = await state(id);
    expect(blobId).not.toBe(id);
    const sealed = await blobBytes(blobId!);
    expect(sealed).toBeDefined();
    const digest = createHash('sha256').update(sealed!).digest('hex');

    await t.services.recordings.delete(actorOf(user, 'owner'), id);
    expect(await blobBytes(blobId!)).toBeUndefined();
    const { rows } = await t.db.query<{ details: { sha256: Record<string, string> } }>(
      `SELECT details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`,
      [id],
    );
    expect(rows[0]!.details.sha256.audioBlob).toBe(digest);
  });

  it('archived and restored: the archive copies the blob the row names, the restore seals it back', async () => {
    const id = await newRecording();
    const a = node('node-a');
    await expect(seal(a, id, await hold(a, id, 4))).resolves.toBe('queued');
    const { blobId } = await state(id);
    await withTenant(t.db, { orgId: user.orgId, userId: null }, (tx) =>
      tx.query(`UPDATE recordings SET status = 'done' WHERE id = $1`, [id]),
    );

    const archiveId = await t.services.archive.archiveRecording(user.orgId, id);
    expect(archiveId).toBeDefined();
    expect(await blobFiles()).not.toContain(`${blobId}.bin`);
    await t.services.archive.restore(actorOf(user, 'owner'), archiveId!);
    expect(bytesOf(await storedPcm(id))).toEqual(framesUpTo(4));
  });
});
