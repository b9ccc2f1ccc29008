import {
  cpSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWav } from '../src/audio/wav.js';
import type { Database } from '../src/db/database.js';
import { withTenant } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { corpusClip } from './helpers/corpus-clip.js';
import { bearer, createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import { instanceFactory, type Instance } from './helpers/live-instances.js';
import { resumeStream, sendAcked } from './helpers/live-resume.js';
import { createLive, frames, mustOpen, openWs, type Conn } from './helpers/live.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, freshDatabase, usingRedis } from './helpers/test-app.js';

/**
 * Live phase 2 (docs/live.md): nothing acknowledged is lost, nothing is duplicated across a
 * server restart. Real WSS over TLS, the real sphinx engine, corpus audio; each "restart" is a
 * second server instance on the same database and data directory. A crash is the disk as it
 * was at some instant (the spool copied away while the instance ran) plus a torn record at the
 * tail, put back after the instance is gone. A real `sotto serve` process killed with SIGKILL:
 * test/live-restart-kill.spec.ts.
 */
const SPEAKER = 'Dr Zebedee Quillfeather';
/**
 * The first three turns of call-02 (~16 s of its real speech, cut in a pause): what the spool
 * must keep exactly does not need the whole call, and each recognizer pass (live, the jobs, the
 * upload compared with) is half as long.
 */
const CLIP_TURNS = 3;

/**
 * With Redis every spool record is also in Redis (docs/live.md, "Resuming on another node"), and a
 * restore prefers that copy. The cases below stage this node's disk (a crash point, a tampered
 * record, a lost folder), so the copy goes too: what remains is the disk as staged.
 */
async function dropReplica(recordingId: string): Promise<void> {
  if (!usingRedis) return;
  const redis = new Redis(process.env.REDIS_URL!);
  try {
    const keys = await redis.keys(`*live-spool:${recordingId}`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

function spoolFiles(dataDir: string): string[] {
  const root = path.join(dataDir, 'live');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) walk(path.join(d, e.name));
      else out.push(path.join(d, e.name));
  };
  walk(root);
  return out;
}

describe(`live recordings survive a server restart (${backendLabel})`, () => {
  let db: Database;
  let drop: () => Promise<void>;
  let dataDir: string;
  let start: ReturnType<typeof instanceFactory>;
  let inst: Instance | undefined;
  let user: TestUser;
  const ip = freshIp();

  beforeAll(async () => {
    ({ db, drop } = await freshDatabase());
    const env = recordingEnv({ SOTTO_LIVE_RECHECK_SECONDS: '1', SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
    dataDir = env.dataDir;
    start = instanceFactory(db, env.env);
    inst = await start();
    user = await createOrgWithUser(inst.services, { role: 'owner' });
    const res = await inst.app.inject({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: bearer(user.accessToken),
      payload: { storeAudio: true },
      remoteAddress: ip,
    });
    expect(res.statusCode).toBe(200);
  });
  afterAll(async () => {
    await inst?.close();
    await drop?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const restart = async (extra: Record<string, string> = {}, clock?: ManualClock) => {
    await inst!.close();
    inst = await start(extra, clock ? { clock } : {});
  };
  const get = (url: string) =>
    inst!.app.inject({ method: 'GET', url, headers: bearer(user.accessToken), remoteAddress: ip });
  const ingest = (id: string) =>
    mustOpen(inst!.server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });

  const statusOf = async (id: string) =>
    (
      await withTenant(db, { orgId: user.orgId, userId: null }, (tx) =>
        tx.query('SELECT status, error_code FROM recordings WHERE id = $1', [id]),
      )
    ).rows[0];

  /** The sealed audio of a stopped recording, as played back: PCM16 mono samples. */
  const sealedPcm = async (id: string): Promise<Int16Array> => {
    const res = await get(`/api/v1/recordings/${id}/audio`);
    expect(res.statusCode, res.body).toBe(200);
    const wav = readWav(res.rawPayload);
    expect(wav.channels).toHaveLength(1);
    return wav.channels[0]!;
  };

  const stopAndCheck = async (c: Conn, id: string, pcm: Int16Array) => {
    c.ws.send(JSON.stringify({ type: 'stop' }));
    expect(await c.waitFor((m) => m.type === 'stopped')).toEqual({ type: 'stopped', status: 'queued' });
    // Exactly the input: no sample lost, none duplicated.
    const sealed = await sealedPcm(id);
    expect(sealed.length).toBe(pcm.length);
    expect(
      Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength).equals(
        Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength),
      ),
    ).toBe(true);
    // The spool is gone once the sealed audio is committed.
    expect(existsSync(path.join(dataDir, 'live', user.orgId, id))).toBe(false);
  };

  it.skipIf(!hasCorpus)(
    `graceful restart and crash mid-stream: resumed, then the same audio and transcript as an upload ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const { pcm, wav } = corpusClip('call-02', CLIP_TURNS);
      const all = frames(pcm);
      const half = Math.floor(all.length / 2);

      // 1. Graceful: the instance closes while the client streams.
      const graceful = await createLive(inst!, user.accessToken, ip, 'Restart, graceful');
      let c = await ingest(graceful);
      c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      await sendAcked(c, all, 0, half);
      await restart();
      expect(await c.closed).toEqual({ code: 1012, reason: 'server restarting: reconnect and resume' });
      expect((await get(`/api/v1/recordings/${graceful}`)).json()).toMatchObject({ status: 'live' });

      // The spool holds no plaintext PCM window and no participant name.
      const files = spoolFiles(dataDir);
      expect(files.length).toBe(1);
      const bytes = readFileSync(files[0]!);
      const raw = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
      for (const at of [0, 3200 * 10 + 17, Math.floor((half * 3200) / 2)])
        expect(bytes.indexOf(raw.subarray(at, at + 64)), `window at ${at}`).toBe(-1);
      expect(bytes.includes(Buffer.from('Zebedee'))).toBe(false);
      expect(path.basename(files[0]!)).not.toMatch(/zebedee/i);
      expect(statSync(files[0]!).mode & 0o777).toBe(0o600);

      c = await ingest(graceful);
      expect(await resumeStream(c, all, SPEAKER)).toBe(half);
      await stopAndCheck(c, graceful, pcm);

      // 2. Crash: the disk as it was after frame `half` was acked, plus a torn record.
      const crashed = await createLive(inst!, user.accessToken, ip, 'Restart, crash');
      c = await ingest(crashed);
      c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      await sendAcked(c, all, 0, half);
      const spoolDir = path.join(dataDir, 'live', user.orgId, crashed);
      const snapshot = mkdtempSync(path.join(tmpdir(), 'sotto-spool-'));
      cpSync(spoolDir, snapshot, { recursive: true });
      // Acknowledged after the snapshot: lost in the "crash", so the client must resend them.
      await sendAcked(c, all, half, half + 20);
      await restart();
      await dropReplica(crashed);
      rmSync(spoolDir, { recursive: true, force: true });
      cpSync(snapshot, spoolDir, { recursive: true });
      const [file] = readdirSync(spoolDir);
      // A record whose write the crash cut short: a plausible prefix, half a body.
      const torn = Buffer.alloc(8 + 600);
      torn.writeUInt32BE(4000, 0);
      torn.writeUInt32BE(half, 4);
      appendFileSync(path.join(spoolDir, file!), torn);

      c = await ingest(crashed);
      expect(await resumeStream(c, all, SPEAKER)).toBe(half);
      expect(inst!.logs.join('\n')).toContain('live recording restored');
      await stopAndCheck(c, crashed, pcm);

      // The final transcripts equal an upload's of the same file.
      const uploaded = await upload(inst!, user.accessToken, ip, wav);
      expect(uploaded.statusCode).toBe(202);
      await inst!.services.jobs.start();
      const strip = (b: { segments: { start: number; end: number; text: string }[] }) =>
        b.segments.map(({ start, end, text }) => ({ start, end, text }));
      await pollRecording(inst!, user.accessToken, ip, uploaded.json().id, (b) => b.status === 'done');
      const upT = strip((await get(`/api/v1/recordings/${uploaded.json().id}/transcript`)).json());
      expect(upT.length).toBeGreaterThan(0);
      for (const id of [graceful, crashed]) {
        const done = await pollRecording(
          inst!,
          user.accessToken,
          ip,
          id,
          (b) => b.status !== 'queued' && b.status !== 'processing',
        );
        expect(done).toMatchObject({ status: 'done' });
        expect(strip((await get(`/api/v1/recordings/${id}/transcript`)).json())).toEqual(upT);
      }
      await inst!.services.jobs.stop();
      rmSync(snapshot, { recursive: true, force: true });
      // No name and no transcript in the logs.
      expect(inst!.logs.join('\n')).not.toContain('Zebedee');
    },
    300_000,
  );

  it('a tampered record in the middle of a spool: refused with a clear reason, recording failed, nothing served', async () => {
    const id = await createLive(inst!, user.accessToken, ip);
    const c = await ingest(id);
    c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
    const all = frames(new Int16Array(16_000 * 3).map((_, i) => Math.round(8000 * Math.sin(i / 9))));
    // Three records at least: wait for each batch's ack before sending the next.
    await sendAcked(c, all, 0, 10);
    await sendAcked(c, all, 10, 20);
    await sendAcked(c, all, 20, 30);
    await restart();
    await dropReplica(id);
    const dir = path.join(dataDir, 'live', user.orgId, id);
    const file = path.join(dir, readdirSync(dir)[0]!);
    const bytes = readFileSync(file);
    // Record 0 is the metadata; flip a byte inside record 1's ciphertext.
    const second = 8 + bytes.readUInt32BE(0);
    bytes.writeUInt8(bytes.readUInt8(second + 8 + 20) ^ 0x01, second + 8 + 20);
    writeFileSync(file, bytes);

    const again = await ingest(id);
    again.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
    expect(await again.closed).toEqual({
      code: 1011,
      reason: "the recording's spool failed an integrity check: recording failed",
    });
    expect(await statusOf(id)).toEqual({ status: 'failed', error_code: 'live_spool_tampered' });
    expect((await get(`/api/v1/recordings/${id}/audio`)).statusCode).toBe(404);
    expect(existsSync(dir)).toBe(false);
    expect(await openWs(inst!.server, `/api/v1/recordings/${id}/live`, { token: user.accessToken })).toBe(
      409,
    );
  });

  it('the resume-window sweep finalises an abandoned session from its spool, and fails what cannot be', async () => {
    const abandoned = await createLive(inst!, user.accessToken, ip);
    const c = await ingest(abandoned);
    c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
    const pcm = new Int16Array(16_000 * 2).map((_, i) => Math.round(6000 * Math.sin(i / 7)));
    const all = frames(pcm);
    await sendAcked(c, all, 0, all.length);
    // A second recording whose spool the node lost (its disk was replaced), and one never streamed.
    const lost = await createLive(inst!, user.accessToken, ip);
    const l = await ingest(lost);
    l.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
    await sendAcked(l, all, 0, 3);
    const never = await createLive(inst!, user.accessToken, ip);
    const deleted = await createLive(inst!, user.accessToken, ip);
    const del = await ingest(deleted);
    del.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
    await sendAcked(del, all, 0, 3);
    // The window is read on the app's clock: the test moves it instead of waiting the window out.
    const clock = new ManualClock();
    const WINDOW_MS = 60_000;
    await restart({ SOTTO_LIVE_RESUME_SECONDS: String(WINDOW_MS / 1000) }, clock);
    rmSync(path.join(dataDir, 'live', user.orgId, lost), { recursive: true, force: true });
    await dropReplica(lost);
    // Deleted while suspended: its spool folder goes with the recording, at once (docs/lifecycle.md).
    const removed = await inst!.app.inject({
      method: 'DELETE',
      url: `/api/v1/recordings/${deleted}`,
      headers: bearer(user.accessToken),
      remoteAddress: ip,
    });
    expect(removed.statusCode).toBe(204);
    const deletedDir = path.join(dataDir, 'live', user.orgId, deleted);
    expect(existsSync(deletedDir)).toBe(false);

    const status = async (id: string) =>
      (await get(`/api/v1/recordings/${id}`)).json() as { status: string; error: string | null };
    // One window later (on the clock: no waiting) the next tick's sweep finalises and fails.
    clock.advance(WINDOW_MS + 1000);
    await eventually(async () => ((await status(abandoned)).status === 'queued' ? true : undefined), 15_000);
    const sealed = await sealedPcm(abandoned);
    expect(sealed.length).toBe(pcm.length);
    // The spool goes right after the commit that queued the job (not inside it): wait for it.
    const abandonedDir = path.join(dataDir, 'live', user.orgId, abandoned);
    await eventually(async () => (existsSync(abandonedDir) ? undefined : true), 15_000);
    await eventually(async () => ((await status(never)).status === 'failed' ? true : undefined), 15_000);
    expect(await statusOf(never)).toEqual({ status: 'failed', error_code: 'no_audio' });
    // Lost spools wait twice the window (the owning node had a whole window to finalise them).
    // That sweep ran with the clock one window on: a lost spool is still given its second one.
    expect((await status(lost)).status).toBe('live');
    clock.advance(WINDOW_MS);
    await eventually(async () => ((await status(lost)).status === 'failed' ? true : undefined), 15_000);
    expect(await statusOf(lost)).toEqual({ status: 'failed', error_code: 'live_spool_lost' });
    const rows = await withTenant(db, { orgId: user.orgId, userId: null }, (tx) =>
      tx.query('SELECT recording_id FROM live_spools WHERE recording_id = ANY($1::uuid[])', [
        [abandoned, lost, never],
      ]),
    );
    expect(rows.rows).toEqual([]);
    await eventually(async () => (existsSync(deletedDir) ? undefined : true), 15_000);
  }, 60_000);
});
