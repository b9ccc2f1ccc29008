/**
 * Deleting a recording (issue 6, docs/lifecycle.md): a hard delete from the database and the
 * data dir at once, with a receipt in the audit log holding SHA-256 digests of the stored
 * ciphertexts (never of plaintext). Deleting while a job is transcribing the recording: the
 * delete wins — the job's result is refused, nothing of the recording comes back in any table or
 * file, and the job's decrypted work copy is gone once the run ends.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { JobQueueService } from '../src/services/transcription/job-queue.service.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { addUser, bearer, createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { createLive, frames, listenTls, mustOpen, type Listening } from './helpers/live.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const TITLE = 'Board meeting about the Harrowgate merger';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** PostgreSQL's binary form of a one-dimensional int4[] without NULLs (array_send), built here. */
function int4ArrayBytes(xs: number[]): Buffer {
  const b = Buffer.alloc(20 + xs.length * 8);
  b.writeInt32BE(1, 0); // dimensions
  b.writeInt32BE(0, 4); // no NULLs
  b.writeInt32BE(23, 8); // element type: int4
  b.writeInt32BE(xs.length, 12);
  b.writeInt32BE(1, 16); // lower bound
  xs.forEach((x, i) => {
    b.writeInt32BE(4, 20 + i * 8);
    b.writeInt32BE(x, 24 + i * 8);
  });
  return b;
}

describe.skipIf(!hasCorpus)(
  `recording deletion with receipts (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let t: TestApp;
    let dataDir: string;
    let owner: TestUser;
    let member: TestUser;
    let outsider: TestUser;
    let server: Listening | undefined;
    const ip = freshIp();

    const del = (u: TestUser, id: string) =>
      t.app.inject({
        method: 'DELETE',
        url: `/api/v1/recordings/${id}`,
        headers: bearer(u.accessToken),
        remoteAddress: ip,
      });
    const workFiles = () => {
      const dir = path.join(dataDir, 'tmp', 'work');
      return existsSync(dir) ? readdirSync(dir) : [];
    };
    const blobFile = (id: string) => path.join(dataDir, 'audio', owner.orgId, `${id}.bin`);
    /** Every trace of a recording: rows in each table keyed by it, and its files. */
    async function traces(id: string): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      await withSystem(t.db, async (tx) => {
        out.recordings = (await tx.query('SELECT 1 FROM recordings WHERE id = $1', [id])).rows.length;
        for (const table of [
          'transcripts',
          'recording_jobs',
          'recording_audio',
          'live_spools',
          'search_index',
        ])
          out[table] = (await tx.query(`SELECT 1 FROM ${table} WHERE recording_id = $1`, [id])).rows.length;
      });
      out.blob = existsSync(blobFile(id)) ? 1 : 0;
      out.spool = existsSync(path.join(dataDir, 'live', owner.orgId, id)) ? 1 : 0;
      return out;
    }
    const none = {
      recordings: 0,
      transcripts: 0,
      recording_jobs: 0,
      recording_audio: 0,
      live_spools: 0,
      search_index: 0,
      blob: 0,
      spool: 0,
    };
    const receipt = async (id: string) =>
      (
        await t.db.query<{
          actor_id: string;
          actor_kind: string;
          details: {
            parts: string[];
            sha256: Record<string, string>;
            reason: string;
            searchIndexRowsLeft: number;
          };
        }>(
          `SELECT actor_id, actor_kind, details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`,
          [id],
        )
      ).rows;

    beforeAll(async () => {
      const r = recordingEnv({ SOTTO_JOB_LEASE_SECONDS: '3', SOTTO_LIVE_RECHECK_SECONDS: '1' });
      dataDir = r.dataDir;
      // One test deletes while the worker is transcribing: recognition must take its real time.
      t = await startTestApp({ env: r.env, engine: 'real' });
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      member = await addUser(t.services, owner.orgId, { role: 'member' });
      outsider = await createOrgWithUser(t.services, { role: 'owner' });
      // Keep audio, so a finished recording has a blob for the receipt to hash.
      await t.app.inject({
        method: 'PATCH',
        url: '/api/v1/org/settings',
        headers: bearer(owner.accessToken),
        remoteAddress: ip,
        payload: { storeAudio: true },
      });
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('deletes a finished recording everywhere, with a receipt of ciphertext digests', async () => {
      const res = await upload(t, owner.accessToken, ip, readFileSync(corpusFile('solo-03', 'wav')), {
        title: TITLE,
      });
      const id = res.json().id as string;
      while (await t.services.jobs.runOnce());
      await pollRecording(t, owner.accessToken, ip, id, (b) => b.status === 'done');
      const stored = (
        await t.db.query<{ body_enc: Uint8Array; title_enc: Uint8Array }>(
          'SELECT t.body_enc, r.title_enc FROM transcripts t JOIN recordings r ON r.id = t.recording_id WHERE r.id = $1',
          [id],
        )
      ).rows[0]!;
      const blob = readFileSync(blobFile(id));
      // The job indexed it for search (docs/search.md): its row goes too, and the receipt says so.
      const index = (
        await t.db.query<{ doc_enc: Uint8Array; tokens: number[] }>(
          'SELECT doc_enc, tokens FROM search_index WHERE recording_id = $1',
          [id],
        )
      ).rows[0]!;
      expect(index.tokens.length).toBeGreaterThan(10);
      const transcript = await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings/${id}/transcript`,
        headers: bearer(owner.accessToken),
        remoteAddress: ip,
      });

      // Cross-tenant and role: another org's owner gets exactly 404; a member cannot delete a colleague's.
      expect((await del(outsider, id)).statusCode).toBe(404);
      expect((await del(member, id)).statusCode).toBe(404);
      expect((await del(owner, 'not-a-uuid')).statusCode).toBe(400);
      expect(await receipt(id)).toEqual([]);

      expect((await del(owner, id)).statusCode).toBe(204);
      expect(await traces(id)).toEqual(none);
      expect((await del(owner, id)).statusCode).toBe(404);

      const [r] = await receipt(id);
      expect(r!.actor_id).toBe(owner.userId);
      expect(r!.actor_kind).toBe('user');
      expect(r!.details.reason).toBe('requested');
      expect(r!.details.parts).toEqual(
        expect.arrayContaining(['recording', 'transcript', 'report', 'audio', 'searchIndex']),
      );
      expect(r!.details.sha256.searchIndexDoc).toBe(sha256(index.doc_enc));
      expect(r!.details.sha256.searchIndexTokens).toBe(sha256(int4ArrayBytes(index.tokens)));
      expect(r!.details.searchIndexRowsLeft).toBe(0);
      expect(r!.details.sha256.transcript).toBe(sha256(stored.body_enc));
      expect(r!.details.sha256.title).toBe(sha256(stored.title_enc));
      expect(r!.details.sha256.audioBlob).toBe(sha256(blob));
      // Never a digest of plaintext (which anyone could confirm by guessing the content).
      const plain = [TITLE, transcript.body, JSON.stringify(transcript.json().segments)].map((p) =>
        sha256(Buffer.from(p)),
      );
      for (const d of Object.values(r!.details.sha256)) expect(plain).not.toContain(d);
      expect(JSON.stringify(r)).not.toContain('Harrowgate');
    });

    it('a job finishing after the delete stores nothing (the delete wins the race)', async () => {
      const res = await upload(t, owner.accessToken, ip, readFileSync(corpusFile('solo-03', 'wav')), {
        title: TITLE,
      });
      const id = res.json().id as string;
      // Claim the job as a worker would, then delete before it reports.
      const queue = new JobQueueService({
        db: t.db,
        keys: t.services.keys,
        audit: null,
        clock: t.services.clock,
        logger: t.services.logger,
        opts: {
          leaseSeconds: 60,
          maxAttempts: 3,
          backoffSeconds: 1,
        },
        audio: t.services.audio,
        uploads: { remove: async () => undefined },
      });
      const job = (await queue.claim())!;
      expect(job.recordingId).toBe(id);
      expect((await del(owner, id)).statusCode).toBe(204);
      const stored = await queue.complete(job, {
        body: { segments: [], speakers: [] },
        durationSeconds: 9,
        channels: 1,
        engine: 'test',
      });
      expect(stored).toBe(false);
      expect(await queue.fail(job, 'engine_failed')).toBe('lost');
      expect(await traces(id)).toEqual(none);
      expect((await receipt(id))[0]!.details.parts).toContain('job');
    });

    it(
      'deleting while the in-process worker is transcribing: nothing of it remains once the job ends',
      { timeout: 240_000 },
      async () => {
        const res = await upload(t, owner.accessToken, ip, readFileSync(corpusFile('intake-01', 'wav')), {
          title: TITLE,
        });
        const id = res.json().id as string;
        await t.services.jobs.start();
        await pollRecording(t, owner.accessToken, ip, id, (b) => b.status === 'processing', 120_000);
        // The pipeline has its decrypted work copy now.
        await eventually(async () => (workFiles().length > 0 ? true : undefined), 30_000);
        expect((await del(owner, id)).statusCode).toBe(204);
        expect(await traces(id)).toEqual(none);
        // The job notices (lost lease at its next heartbeat), aborts, and removes its plaintext copy.
        await eventually(async () => (workFiles().length === 0 ? true : undefined), 60_000);
        await new Promise((r) => setTimeout(r, 1500)); // a heartbeat later, still nothing comes back
        await t.services.jobs.stop();
        expect(await traces(id)).toEqual(none);
        expect(workFiles()).toEqual([]);
        expect(stagedFiles(dataDir)).toEqual([]);
        expect(existsSync(path.join(dataDir, 'audio', owner.orgId, `${id}.bin`))).toBe(false);
        const [r] = await receipt(id);
        expect(r!.details.parts).toEqual(expect.arrayContaining(['recording', 'audio', 'job']));
        expect(r!.details.sha256.audioBlob).toMatch(/^[0-9a-f]{64}$/);
      },
    );

    it('deleting a live recording while it streams removes its spool at once; the session ends and writes nothing back', async () => {
      server = await listenTls(t.services);
      const id = await createLive(t, owner.accessToken, ip, TITLE);
      const c = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      c.ws.send(JSON.stringify({ type: 'start', participant: 'Ann' }));
      const pcm = new Int16Array(16_000).map((_, i) => Math.round(6000 * Math.sin(i / 7)));
      const all = frames(pcm);
      for (const f of all) c.ws.send(f);
      await c.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
      const spoolDir = path.join(dataDir, 'live', owner.orgId, id);
      expect(existsSync(spoolDir)).toBe(true);
      expect((await del(owner, id)).statusCode).toBe(204);
      expect(existsSync(spoolDir)).toBe(false);
      // Frames still arriving before the session notices are not kept: it closes, and its
      // finalisation removes anything appended meanwhile.
      for (const f of all.slice(0, 3)) c.ws.send(f);
      await c.closed;
      await eventually(async () => (existsSync(spoolDir) ? undefined : true), 15_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await traces(id)).toEqual(none);
      const [r] = await receipt(id);
      expect(r!.details.parts).toEqual(expect.arrayContaining(['recording', 'liveSpool']));
      expect(r!.details.sha256.liveSpoolKey).toMatch(/^[0-9a-f]{64}$/);
    });

    it('logged no title or transcript', () => {
      expect(t.logs.join('\n')).not.toContain('Harrowgate');
    });
  },
);
