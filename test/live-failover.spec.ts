import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { freshIp } from './helpers/auth-client.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { bearer, createOrgWithUser } from './helpers/fixtures.js';
import {
  instanceFactory,
  liveRecordingThenClose,
  openIngestOnceClaimLapses,
  serve,
  serveEnv,
  twoNodeSpecs,
  type Instance,
} from './helpers/live-instances.js';
import { RedisLiveBus } from '../src/adapters/redis/live-bus.adapter.js';
import { expectSealedAudio } from './helpers/sealed-audio.js';
import { createLive, frames, mustOpen, type Conn } from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, freshDatabase, testMasterKey, usingRedis } from './helpers/test-app.js';

/**
 * Issue 16, item 3 (docs/live.md, "Multiple nodes"): a live session survives the death of the
 * node that ingests it. Two real `sotto serve` processes share PostgreSQL, Redis and the org
 * key directory but NOT a data directory (each its own spool folder and audio storage): audio streams to A, A is killed with SIGKILL
 * mid-stream (frames in flight, no shutdown path), the client resumes on B as soon as A's claim
 * lapses, and the sealed audio is exactly the input: every acknowledged frame, once.
 */
const { skip, why } = twoNodeSpecs;
const SPEAKER = 'Dr Ottoline Marchbanks';

const acked = (c: Conn) =>
  Math.max(-1, ...c.messages.filter((m) => m.type === 'ack').map((m) => m.seq as number));

/**
 * Two `sotto serve` processes, A and B, on a fresh database and Redis prefix, and a live
 * recording made through an in-process instance; `finish` stops the recording on B (through
 * `again`, its ingest socket there), stops both nodes and checks the sealed audio byte for byte.
 */
async function twoNodes(title: string) {
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
  const children: ChildProcess[] = [];
  let local: Instance | undefined;
  const cleanup = async () => {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
    await local?.close();
    redis.disconnect();
    await drop();
    for (const d of [env.dataDir, dirA, dirB]) rmSync(d, { recursive: true, force: true });
  };
  try {
    local = await start();
    const { user, ip, id } = await liveRecordingThenClose(local, title);
    local = undefined;
    const nodeEnv = (dataDir: string) =>
      serveEnv({ ...shared, SOTTO_DATA_DIR: dataDir }, url!, process.env.REDIS_URL!);
    const [a, b] = await Promise.all([serve(nodeEnv(dirA)), serve(nodeEnv(dirB))]);
    children.push(a.child, b.child);
    const finish = async (again: Conn, pcm: Int16Array) => {
      again.ws.send(JSON.stringify({ type: 'stop' }));
      expect(await again.waitFor((m) => m.type === 'stopped', 60_000)).toEqual({
        type: 'stopped',
        status: 'queued',
      });
      // Stopped: the replica is gone, and B never needed A's disk.
      expect(await redis.exists(`${prefix}live-spool:${id}`)).toBe(0);
      expect(existsSync(path.join(dirB, 'live', user.orgId, id))).toBe(false);
      for (const ch of [a.child, b.child]) {
        if (ch.exitCode !== null || ch.signalCode !== null) continue;
        ch.kill('SIGTERM');
        await new Promise((res) => ch.on('close', res));
      }
      // The sealed audio (on B's data directory, where it was finalised) is the input, exactly.
      local = await start({ SOTTO_DATA_DIR: dirB });
      await expectSealedAudio(local, user, ip, id, pcm);
    };
    return { a, b, user, id, prefix, redis, finish, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * Streams 40 % of call-02 to A and waits for its acks, then 100 frames more, and resolves once A
 * acknowledged at least 20 of those (so some are still in flight when the caller strikes A).
 */
async function streamToA(a: { port: number; output: () => string }, id: string, token: string) {
  const { pcm } = readCorpusMono('call-02');
  const all = frames(pcm);
  const cut = Math.floor(all.length * 0.4);
  const node = { port: a.port, ca: '', close: async () => undefined };
  const c = await mustOpen(node, `/api/v1/recordings/${id}/live`, { token });
  c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
  for (const f of all.slice(0, cut)) c.ws.send(f);
  await c
    .waitFor((m) => m.type === 'ack' && m.seq === cut - 1, 30_000)
    .catch(async (err: Error) => {
      throw new Error(`${err.message}; closed ${JSON.stringify(await c.closed)}\n${a.output().slice(-3000)}`);
    });
  for (const f of all.slice(cut, cut + 100)) c.ws.send(f);
  await c.waitFor((m) => m.type === 'ack' && (m.seq as number) >= cut + 20, 30_000);
  return { c, pcm, all, cut };
}

/** Resumes on B through `again`: B holds all A acknowledged; resends the rest from B's ack. */
async function resumeOnB(again: Conn, all: Buffer[], ackedOnA: number, cut: number) {
  again.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
  const first = (await again.waitFor((m) => m.type === 'ack')).seq as number;
  expect(first).toBeGreaterThanOrEqual(ackedOnA);
  expect(first).toBeLessThan(cut + 100);
  for (const f of all.slice(first + 1)) again.ws.send(f);
  await again.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1, 60_000);
  return first;
}

describe.skipIf(!usingRedis)(`the ingest claim of a node no longer alive (${backendLabel})`, () => {
  it('is taken over once its liveness lapsed and the claim is a liveness TTL old, never sooner', async () => {
    const redis = new Redis(process.env.REDIS_URL!);
    const prefix = `sotto-alive-${randomUUID()}:`;
    const bus = new RedisLiveBus(redis, prefix, { warn: () => undefined }, 600);
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
    const beating = new Set<string>(['B']);
    const timer = setInterval(() => {
      for (const n of beating) void bus.beat(n);
    }, 100);
    const owner = `${prefix}live-owner:r`;
    try {
      // Liveness tracked for less than a TTL yet: no claim counts as abandoned, even a dead
      // node's (A never beat) claim renewed 5 s ago.
      await bus.beat('B');
      expect(await bus.claim('r', 'A', 10_000)).toBe(true);
      await redis.pexpire(owner, 5_000);
      expect(await bus.claim('r', 'B', 10_000)).toBe(false);
      // A TTL later: A is not alive and its claim is old, so B takes it; A's renewal is refused.
      await sleep(700);
      expect(await bus.claim('r', 'B', 10_000)).toBe(true);
      expect(await bus.claim('r', 'A', 10_000)).toBe(false);
      // B's liveness key vanished (evicted) right after B renewed: a fresh claim is not taken.
      beating.delete('B');
      beating.add('A');
      expect(await bus.claim('r', 'B', 10_000)).toBe(true);
      await redis.del(`${prefix}node-alive:B`);
      expect(await bus.claim('r', 'A', 10_000)).toBe(false);
      // B stopped beating and renewing a TTL ago: A takes over.
      await sleep(700);
      expect(await bus.claim('r', 'A', 10_000)).toBe(true);
      expect(await bus.claim('r', 'B', 10_000)).toBe(false);
      // Nobody beat for longer than a TTL (Redis was down): B beats first, and A's old claim is
      // still A's until A had a TTL to beat again.
      beating.clear();
      await sleep(900);
      await bus.beat('B');
      await redis.pexpire(owner, 5_000);
      expect(await bus.claim('r', 'B', 10_000)).toBe(false);
      beating.add('B');
      await sleep(800);
      expect(await bus.claim('r', 'B', 10_000)).toBe(true);
    } finally {
      clearInterval(timer);
      await redis.del(...(await redis.keys(`${prefix}*`)), `${prefix}x`);
      redis.disconnect();
    }
  }, 30_000);
});

describe.skipIf(skip)(`a live session resumes on another node after SIGKILL (${backendLabel})${why}`, () => {
  it('stream to A, kill -9 A with frames in flight, resume on B: the sealed audio is exactly the input', async () => {
    const n = await twoNodes('Failover');
    try {
      const { c, pcm, all, cut } = await streamToA(n.a, n.id, n.user.accessToken);
      // The spool is replicated in Redis, not only on A's disk.
      expect(await n.redis.exists(`${n.prefix}live-spool:${n.id}`)).toBe(1);
      n.a.child.kill('SIGKILL');
      expect((await c.closed).code).toBe(1006);
      const ackedOnA = acked(c);
      expect(ackedOnA).toBeGreaterThanOrEqual(cut + 20);

      // B takes the recording over once A's liveness lapsed (2 × 1 s + 1 s, liveAliveTtlMs), far
      // sooner than A's claim would (3 × 1 s + 10 s): 409 until then.
      const killedAt = Date.now();
      const again = await openIngestOnceClaimLapses(n.b.port, n.id, n.user.accessToken);
      const tookOverMs = Date.now() - killedAt;
      expect(tookOverMs).toBeLessThan(8_000);
      const first = await resumeOnB(again, all, ackedOnA, cut);
      await n.finish(again, pcm);
      console.log(
        `failover: B took over ${tookOverMs} ms after SIGKILL; A had acked ${ackedOnA + 1} frames, B held ${first + 1}`,
      );
    } finally {
      await n.cleanup();
    }
  }, 240_000);

  it('A stalled (SIGSTOP) past its liveness loses the recording to B, drops it on SIGCONT, the audio is exact', async () => {
    const n = await twoNodes('Stalled');
    try {
      const { c, pcm, all, cut } = await streamToA(n.a, n.id, n.user.accessToken);
      n.a.child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      const again = await openIngestOnceClaimLapses(n.b.port, n.id, n.user.accessToken);
      const tookOverMs = Date.now() - stoppedAt;
      expect(tookOverMs).toBeLessThan(8_000);
      const ackedOnA = acked(c);
      const first = await resumeOnB(again, all, ackedOnA, cut);
      // A runs again, with frames of its socket still unread: it finds the claim gone (its spool
      // append is fenced, or its renewal refused) and closes its socket for the client to move.
      n.a.child.kill('SIGCONT');
      expect((await c.closed).code).toBe(1012);
      expect(acked(c)).toBeLessThanOrEqual(first);
      expect(n.a.output()).toContain('live recording taken over by another node');
      await n.finish(again, pcm);
      console.log(
        `stall: B took over ${tookOverMs} ms after SIGSTOP; A had acked ${ackedOnA + 1} frames, B held ${first + 1}`,
      );
    } finally {
      n.a.child.kill('SIGCONT');
      await n.cleanup();
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
