import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { freePort } from './helpers/ports.js';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { defaultNodeId } from '../src/config/node-id.js';
import { liveClaimTtlMs } from '../src/services/live/live-spool.js';
import { hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { corpusClip } from './helpers/corpus-clip.js';
import {
  instanceFactory,
  liveRecordingThenClose,
  openIngestOnceClaimLapses,
  serve,
  serveEnv,
  type Instance,
} from './helpers/live-instances.js';
import { frames, mustOpen, openWs, type Conn } from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { resumeStream, sendAcked } from './helpers/live-resume.js';
import { expectSealedAudio } from './helpers/sealed-audio.js';
import { backendLabel, freshDatabase, testMasterKey, usingPostgres, usingRedis } from './helpers/test-app.js';

/**
 * Issue 16, item 3 (docs/live.md, "Node id"): a `sotto serve` killed with SIGKILL and started
 * again. Under a new node id its capture client waits until the dead process is seen dead (its
 * liveness key lapsed: docs/live.md, "Multiple nodes"); under the same one it resumes on its first handshake. Either way the sealed audio is
 * the input byte for byte. Real processes, PostgreSQL (an embedded PGlite belongs to one process).
 */
const SPEAKER = 'Dr Zebedee Quillfeather';
/** The first three turns of call-02 (~16 s of speech): enough for the spool, one short recognition. */
const CLIP_TURNS = 3;

/**
 * SOTTO_LIVE_RECHECK_SECONDS per case. With the same node id the claim must outlive the restart
 * (3 × 10 s + 10 s), so the test sees it taken over, not lapsed; with a random id the test waits
 * for the dead node's liveness to lapse (2 × re-check + 1 s), so the shortest re-check keeps that
 * wait short.
 */
const RECHECK_SAME_ID = 10;
const RECHECK_RANDOM_ID = 1;

/**
 * The real thing: `sotto serve` as a child process, killed with SIGKILL mid-stream (no shutdown
 * path runs at all), then started again on the same database and data directory. PostgreSQL only:
 * an embedded PGlite database belongs to one process, so the test could not share it.
 *
 * Twice: with a random node id per process (port 0 derives none), the new process must wait until
 * the dead one is seen dead (with Redis; 409 meanwhile); with the same SOTTO_NODE_ID
 * it is the same node, and takes its own claim over at once. In that case the claim lives
 * 3 × 10 s + 10 s past its last renewal, longer than a loaded machine takes to start the new
 * process (up to 16 s seen), so the takeover is seen while the old claim still holds.
 */
describe.skipIf(!usingPostgres || !hasCorpus)(
  `live recordings survive SIGKILL of the server process (${backendLabel})${usingPostgres ? '' : ': needs PostgreSQL'}${hasCorpus ? '' : ` ${noCorpusReason}`}`,
  () => {
    it.each([
      { label: 'a random node id', nodeId: undefined, recheck: RECHECK_RANDOM_ID },
      {
        label: 'the same SOTTO_NODE_ID',
        nodeId: `restart-${randomUUID().slice(0, 8)}`,
        recheck: RECHECK_SAME_ID,
      },
    ])(
      'streams half a file, kill -9, a new `sotto serve` with $label resumes: the sealed audio is exactly the input',
      async ({ label, nodeId, recheck }) => {
        const { db, url, drop } = await freshDatabase();
        const env = recordingEnv({
          SOTTO_LIVE_RECHECK_SECONDS: String(recheck),
          SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
        });
        const masterKey = testMasterKey();
        const prefix = `sotto-kill-${randomUUID()}:`;
        const shared = { ...env.env, SOTTO_MASTER_KEY: masterKey, SOTTO_REDIS_PREFIX: prefix };
        const start = instanceFactory(db, shared);
        let local: Instance | undefined = await start();
        const children: ChildProcess[] = [];
        const redis = usingRedis ? new Redis(process.env.REDIS_URL!) : undefined;
        try {
          const { user, ip, id } = await liveRecordingThenClose(local, 'Killed');
          local = undefined;

          const childEnv = {
            ...serveEnv(shared, url!, usingRedis ? process.env.REDIS_URL : undefined),
            ...(nodeId ? { SOTTO_NODE_ID: nodeId } : {}),
          };
          const { pcm } = corpusClip('call-02', CLIP_TURNS);
          const all = frames(pcm);
          const half = Math.floor(all.length / 2);
          const first = await serve(childEnv);
          children.push(first.child);
          const node = (port: number) => ({ port, ca: '', close: async () => undefined });
          const c = await mustOpen(node(first.port), `/api/v1/recordings/${id}/live`, {
            token: user.accessToken,
          });
          c.ws.send(JSON.stringify({ type: 'start', participant: SPEAKER }));
          await sendAcked(c, all, 0, half);
          const owner = `${prefix}live-owner:${id}`;
          if (nodeId) {
            expect(first.output()).toContain(`"nodeId":"${nodeId}"`);
            if (redis) expect(await redis.get(owner)).toBe(nodeId);
            // Two live processes never share an id: a second one with this id stops at once.
            await expect(serve(childEnv)).rejects.toThrow(
              `SOTTO_NODE_ID ${nodeId} is in use by another \`sotto serve\` on this host`,
            );
          }
          first.child.kill('SIGKILL');
          expect((await c.closed).code).toBe(1006); // no close frame: the process is gone
          const killedAt = Date.now();

          const second = await serve(childEnv);
          children.push(second.child);
          const listeningAt = Date.now();
          // The same node takes its own claim over on the first attempt; another one must wait
          // until the dead process is seen dead (with Redis: 409 until then).
          let again: Conn;
          let claimLeftMs: number | undefined;
          if (nodeId) {
            // The dead process's claim still holds (ms left): taken over, not waited out.
            if (redis) claimLeftMs = await redis.pttl(owner);
            const r = await openWs(node(second.port), `/api/v1/recordings/${id}/live`, {
              token: user.accessToken,
            });
            if (typeof r === 'number') throw new Error(`the same node id was refused ${r}`);
            again = r;
          } else
            again = await openIngestOnceClaimLapses(second.port, id, user.accessToken, {
              timeoutMs: liveClaimTtlMs(recheck) + 5000,
            });
          const resumedAt = Date.now();
          expect(await resumeStream(again, all, SPEAKER)).toBe(half);
          if (nodeId && redis) {
            expect(claimLeftMs).toBeGreaterThan(0);
            expect(await redis.get(owner)).toBe(nodeId);
          }
          console.log(
            `restart with ${label}: resumed ${resumedAt - killedAt} ms after SIGKILL, ` +
              `${resumedAt - listeningAt} ms after the new process listened` +
              (claimLeftMs === undefined ? '' : `, the old claim had ${claimLeftMs} ms left`) +
              (usingRedis ? '' : ' (no Redis: no claim)'),
          );
          again.ws.send(JSON.stringify({ type: 'stop' }));
          expect(await again.waitFor((m) => m.type === 'stopped')).toEqual({
            type: 'stopped',
            status: 'queued',
          });
          second.child.kill('SIGTERM');
          await new Promise((res) => second.child.on('close', res));
          if (redis) expect(await redis.get(owner)).toBeNull();

          local = await start();
          await expectSealedAudio(local, user, ip, id, pcm);
        } finally {
          for (const ch of children) if (ch.exitCode === null) ch.kill('SIGKILL');
          await local?.close();
          redis?.disconnect();
          await drop();
          rmSync(env.dataDir, { recursive: true, force: true });
        }
      },
      180_000,
    );
  },
);

describe.skipIf(!usingPostgres)(
  `the default node id of \`sotto serve\` (${backendLabel})${usingPostgres ? '' : ': needs PostgreSQL'}`,
  () => {
    it('derived from the host and port: the same after SIGKILL, and refused to a second server meanwhile', async () => {
      const { url, drop } = await freshDatabase();
      const env = recordingEnv({});
      const shared = {
        ...env.env,
        SOTTO_MASTER_KEY: testMasterKey(),
        SOTTO_REDIS_PREFIX: `sotto-node-id-${randomUUID()}:`,
      };
      const port = await freePort();
      const childEnv = {
        ...serveEnv(shared, url!, usingRedis ? process.env.REDIS_URL : undefined),
        SOTTO_HTTPS_PORT: String(port),
      };
      // What this host gives for that address and port (the test runs where the servers do).
      const expected = defaultNodeId({ host: '127.0.0.1', httpsPort: port })!;
      const children: ChildProcess[] = [];
      try {
        const first = await serve(childEnv);
        children.push(first.child);
        expect(first.port).toBe(port);
        expect(first.output()).toContain(`"nodeId":"${expected}"`);
        // A second server with the same settings stops before its services start, naming the id.
        await expect(serve(childEnv)).rejects.toThrow(
          `the node id derived from this host and SOTTO_HTTPS_PORT ${expected} is in use by another`,
        );
        const gone = new Promise((res) => first.child.on('close', res));
        first.child.kill('SIGKILL');
        await gone;
        // The kernel let go of the id with the killed process: the restart has it at once.
        const second = await serve(childEnv);
        children.push(second.child);
        expect(second.output()).toContain(`"nodeId":"${expected}"`);
      } finally {
        for (const ch of children) if (ch.exitCode === null) ch.kill('SIGKILL');
        await drop();
        rmSync(env.dataDir, { recursive: true, force: true });
      }
    }, 120_000);
  },
);
