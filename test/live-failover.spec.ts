import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { freshIp } from './helpers/auth-client.js';
import { hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { bearer, createOrgWithUser } from './helpers/fixtures.js';
import {
  instanceFactory,
  liveRecordingThenClose,
  openIngestOnceClaimLapses,
  serve,
  serveEnv,
  type Instance,
} from './helpers/live-instances.js';
import { expectSealedAudio } from './helpers/sealed-audio.js';
import { createLive, frames, mustOpen, type Conn } from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, freshDatabase, testMasterKey, usingPostgres, usingRedis } from './helpers/test-app.js';

/**
 * Issue 16, item 3 (docs/live.md, "Multiple nodes"): a live session survives the death of the
 * node that ingests it. Two real `sotto serve` processes share PostgreSQL, Redis and the org
 * key directory but NOT a data directory (each its own spool folder and audio storage): audio streams to A, A is killed with SIGKILL
 * mid-stream (frames in flight, no shutdown path), the client resumes on B as soon as A's claim
 * lapses, and the sealed audio is exactly the input: every acknowledged frame, once.
 */
const skip = !usingPostgres || !usingRedis || !hasCorpus;
const why =
  !usingPostgres || !usingRedis
    ? ': needs DATABASE_URL and REDIS_URL'
    : hasCorpus
      ? ''
      : ` ${noCorpusReason}`;
const SPEAKER = 'Dr Ottoline Marchbanks';

const acked = (c: Conn) =>
  Math.max(-1, ...c.messages.filter((m) => m.type === 'ack').map((m) => m.seq as number));

describe.skipIf(skip)(`a live session resumes on another node after SIGKILL (${backendLabel})${why}`, () => {
  it('stream to A, kill -9 A with frames in flight, resume on B: the sealed audio is exactly the input', async () => {
    const { db, url, drop } = await freshDatabase();
    const env = recordingEnv({ SOTTO_LIVE_RECHECK_SECONDS: '1', SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
    const prefix = `sotto-failover-${randomUUID()}:`;
    // The org keys (SOTTO_KEY_DIR) are shared like the database; the data directories are not.
    const shared = {
      ...env.env,
      SOTTO_MASTER_KEY: testMasterKey(),
      SOTTO_REDIS_PREFIX: prefix,
      SOTTO_KEY_DIR: path.join(env.dataDir, 'keys'),
    };
    const dirA = mkdtempSync(path.join(tmpdir(), 'sotto-node-a-'));
    const dirB = mkdtempSync(path.join(tmpdir(), 'sotto-node-b-'));
    const redis = new Redis(process.env.REDIS_URL!);
    const start = instanceFactory(db, shared);
    let local: Instance | undefined = await start();
    const children: ChildProcess[] = [];
    try {
      const { user, ip, id } = await liveRecordingThenClose(local, 'Failover');
      local = undefined;

      const nodeEnv = (dataDir: string) =>
        serveEnv({ ...shared, SOTTO_DATA_DIR: dataDir }, url!, process.env.REDIS_URL!);
      const [a, b] = await Promise.all([serve(nodeEnv(dirA)), serve(nodeEnv(dirB))]);
      children.push(a.child, b.child);
      const node = (port: number) => ({ port, ca: '', close: async () => undefined });

      const { pcm } = readCorpusMono('call-02');
      const all = frames(pcm);
      const cut = Math.floor(all.length * 0.4);
      const c = await mustOpen(node(a.port), `/api/v1/recordings/${id}/live`, { token: user.accessToken });
      c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      for (const f of all.slice(0, cut)) c.ws.send(f);
      await c
        .waitFor((m) => m.type === 'ack' && m.seq === cut - 1, 30_000)
        .catch(async (err: Error) => {
          throw new Error(
            `${err.message}; closed ${JSON.stringify(await c.closed)}\n${a.output().slice(-3000)}`,
          );
        });
      // The spool is replicated in Redis, not only on A's disk.
      expect(await redis.exists(`${prefix}live-spool:${id}`)).toBe(1);
      // More frames, then the kill while some are still unacknowledged.
      for (const f of all.slice(cut, cut + 100)) c.ws.send(f);
      await c.waitFor((m) => m.type === 'ack' && (m.seq as number) >= cut + 20, 30_000);
      a.child.kill('SIGKILL');
      expect((await c.closed).code).toBe(1006);
      const ackedOnA = acked(c);
      expect(ackedOnA).toBeGreaterThanOrEqual(cut + 20);

      // B takes the recording over once A's claim lapses (3 × 1 s + 10 s): 409 until then.
      const killedAt = Date.now();
      const again = await openIngestOnceClaimLapses(b.port, id, user.accessToken);
      const tookOverMs = Date.now() - killedAt;
      expect(tookOverMs).toBeLessThan(20_000);

      // Resume on B: nothing acknowledged by A is missing there; resend from B's ack.
      again.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      const first = (await again.waitFor((m) => m.type === 'ack')).seq as number;
      expect(first).toBeGreaterThanOrEqual(ackedOnA);
      expect(first).toBeLessThan(cut + 100);
      for (const f of all.slice(first + 1)) again.ws.send(f);
      await again.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1, 60_000);
      again.ws.send(JSON.stringify({ type: 'stop' }));
      expect(await again.waitFor((m) => m.type === 'stopped', 60_000)).toEqual({
        type: 'stopped',
        status: 'queued',
      });
      // Stopped: the replica is gone, and B never needed A's disk.
      expect(await redis.exists(`${prefix}live-spool:${id}`)).toBe(0);
      expect(existsSync(path.join(dirB, 'live', user.orgId, id))).toBe(false);
      b.child.kill('SIGTERM');
      await new Promise((res) => b.child.on('close', res));

      // The sealed audio (on B's data directory, where it was finalised) is the input, exactly.
      local = await start({ SOTTO_DATA_DIR: dirB });
      await expectSealedAudio(local, user, ip, id, pcm);
      console.log(
        `failover: B took over ${tookOverMs} ms after SIGKILL; A had acked ${ackedOnA + 1} frames, B held ${first + 1}`,
      );
    } finally {
      for (const ch of children) if (ch.exitCode === null) ch.kill('SIGKILL');
      await local?.close();
      redis.disconnect();
      await drop();
      for (const d of [env.dataDir, dirA, dirB]) rmSync(d, { recursive: true, force: true });
    }
  }, 240_000);

  it('deleting a live recording deletes its copy in Redis, and the streaming node adds nothing back', async () => {
    const { db, drop } = await freshDatabase();
    const env = recordingEnv({ SOTTO_LIVE_RECHECK_SECONDS: '1' });
    const prefix = `sotto-failover-${randomUUID()}:`;
    const redis = new Redis(process.env.REDIS_URL!);
    const inst = await instanceFactory(db, { ...env.env, SOTTO_REDIS_PREFIX: prefix })();
    try {
      const user = await createOrgWithUser(inst.services, { role: 'owner' });
      const ip = freshIp();
      const id = await createLive(inst, user.accessToken, ip);
      const key = `${prefix}live-spool:${id}`;
      const c = await mustOpen(inst.server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
      c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      const all = frames(new Int16Array(16_000).map((_, i) => Math.round(6000 * Math.sin(i / 7))));
      for (const f of all) c.ws.send(f);
      await c.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
      // The meta record and at least one batch, sealed: no PCM and no name in clear.
      const entries = await redis.xrangeBuffer(key, '-', '+');
      expect(entries.length).toBeGreaterThanOrEqual(2);
      const stored = Buffer.concat(entries.flatMap(([, f]) => f));
      expect(stored.includes(Buffer.from('Ottoline'))).toBe(false);
      expect(stored.includes(all[5]!.subarray(0, 64))).toBe(false);

      const removed = await inst.app.inject({
        method: 'DELETE',
        url: `/api/v1/recordings/${id}`,
        headers: bearer(user.accessToken),
        remoteAddress: ip,
      });
      expect(removed.statusCode).toBe(204);
      expect(await redis.exists(key)).toBe(0);
      // Frames still arriving before the node notices: refused by the tombstone, never stored.
      for (const f of all.slice(0, 3)) c.ws.send(f);
      await c.closed;
      await new Promise((res) => setTimeout(res, 1500));
      expect(await redis.exists(key)).toBe(0);
    } finally {
      await inst.close();
      redis.disconnect();
      await drop();
      rmSync(env.dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it("a copy in Redis shorter than the node's own spool (Redis lost data) does not replace it", async () => {
    const { db, drop } = await freshDatabase();
    const env = recordingEnv({});
    const prefix = `sotto-failover-${randomUUID()}:`;
    const redis = new Redis(process.env.REDIS_URL!);
    const start = instanceFactory(db, { ...env.env, SOTTO_REDIS_PREFIX: prefix });
    let inst: Instance | undefined = await start();
    try {
      const user = await createOrgWithUser(inst.services, { role: 'owner' });
      const id = await createLive(inst, user.accessToken, freshIp());
      const key = `${prefix}live-spool:${id}`;
      let c = await mustOpen(inst.server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
      c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      const all = frames(new Int16Array(16_000 * 3).map((_, i) => Math.round(8000 * Math.sin(i / 9))));
      // Three batches at least: wait for each one's ack before sending the next.
      for (const [from, to] of [
        [0, 10],
        [10, 20],
        [20, 30],
      ] as const) {
        for (const f of all.slice(from, to)) c.ws.send(f);
        await c.waitFor((m) => m.type === 'ack' && m.seq === to - 1);
      }
      await inst.close();
      inst = undefined;
      // Redis "loses" its newest records: the copy now ends before the node's file does.
      const entries = await redis.xrange(key, '-', '+');
      expect(entries.length).toBeGreaterThanOrEqual(4);
      await redis.xdel(key, ...entries.slice(2).map(([entryId]) => entryId));

      inst = await start();
      c = await mustOpen(inst.server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
      c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
      // Everything acknowledged is still there: the node kept its own, longer spool.
      expect((await c.waitFor((m) => m.type === 'ack')).seq).toBe(29);
      c.ws.send(JSON.stringify({ type: 'stop' }));
      expect(await c.waitFor((m) => m.type === 'stopped', 30_000)).toEqual({
        type: 'stopped',
        status: 'queued',
      });
    } finally {
      await inst?.close();
      redis.disconnect();
      await drop();
      rmSync(env.dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
