import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { freshIp } from './helpers/auth-client.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { createOrgWithUser, eventually } from './helpers/fixtures.js';
import { instanceFactory, serve, serveEnv, twoNodeSpecs, type Instance } from './helpers/live-instances.js';
import { createLive, mustOpen, openWs, streamPcm, type LiveMessage } from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, freshDatabase, testMasterKey } from './helpers/test-app.js';

/**
 * Multi-node for real (issue 4: "tested with two server processes"): two `sotto serve` child
 * processes on their own ports, sharing only the PostgreSQL database, Redis and the data
 * directory (the shared audio storage a job needs, whichever node runs it). Audio ingested on
 * process A reaches a viewer on process B through Redis; the handshake on B enforces tenancy.
 */
const { skip, why } = twoNodeSpecs;

interface Seg {
  id: string;
  seq: number;
  speaker: string;
  text: string;
}

const segments = (messages: LiveMessage[]) =>
  messages.filter((m) => m.type === 'segment').map((m) => m as unknown as Seg);

describe.skipIf(skip)(`live recording across two server processes (${backendLabel})${why}`, () => {
  it('ingest on A, watch on B: same segments in order; another org is refused on B; stop on A ends done', async () => {
    const { db, url, drop } = await freshDatabase();
    const env = recordingEnv({ SOTTO_LIVE_RECHECK_SECONDS: '1', SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
    const shared = {
      ...env.env,
      SOTTO_MASTER_KEY: testMasterKey(),
      SOTTO_REDIS_PREFIX: `sotto-two-${randomUUID()}:`,
    };
    let local: Instance | undefined = await instanceFactory(db, shared)();
    const children: ChildProcess[] = [];
    try {
      const owner = await createOrgWithUser(local.services, { role: 'owner' });
      const stranger = await createOrgWithUser(local.services, { role: 'owner' });
      const id = await createLive(local, owner.accessToken, freshIp(), 'Two nodes');
      // Only the two child processes serve (and run jobs) from here on.
      await local.close();
      local = undefined;

      const env = serveEnv(shared, url!, process.env.REDIS_URL!);
      const [a, b] = await Promise.all([serve(env), serve(env)]);
      children.push(a.child, b.child);
      expect(a.port).not.toBe(b.port);
      const node = (port: number) => ({ port, ca: '', close: async () => undefined });
      const nodeA = node(a.port);
      const nodeB = node(b.port);

      // Tenancy is enforced at B's handshake too: another org's recording does not exist (404).
      expect(await openWs(nodeB, `/api/v1/recordings/${id}/watch`, { token: stranger.accessToken })).toBe(
        404,
      );
      const viewerA = await mustOpen(nodeA, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      const viewerB = await mustOpen(nodeB, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await Promise.all([viewerA, viewerB].map((v) => v.waitFor((m) => m.type === 'ready')));

      const { pcm } = readCorpusMono('call-02');
      const bot = await mustOpen(nodeA, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      await streamPcm(bot, pcm, 'Desk');
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      expect(await bot.waitFor((m) => m.type === 'stopped')).toEqual({ type: 'stopped', status: 'queued' });
      expect((await viewerA.closed).code).toBe(1000);
      expect((await viewerB.closed).code).toBe(1000);

      const onA = segments(viewerA.messages);
      const onB = segments(viewerB.messages);
      expect(onA.length).toBeGreaterThanOrEqual(3);
      expect(onA.every((s) => s.speaker === 'Desk')).toBe(true);
      // Every final segment reached B, same ids and texts, in the same order.
      expect(onB.map((s) => [s.id, s.seq, s.text])).toEqual(onA.map((s) => [s.id, s.seq, s.text]));
      expect(viewerB.messages.at(-1)).toEqual({ type: 'stopped', status: 'queued' });

      // The job (on either process) finishes the recording.
      const status = async () =>
        (
          await withTenant(db, { orgId: owner.orgId, userId: null }, (tx) =>
            tx.query<{ status: string }>('SELECT status FROM recordings WHERE id = $1', [id]),
          )
        ).rows[0]?.status;
      await eventually(async () => {
        const s = await status();
        expect(s).not.toBe('failed');
        if (s === 'done') return s;
        await new Promise((res) => setTimeout(res, 500));
        return undefined;
      }, 150_000);
    } finally {
      for (const ch of children) if (ch.exitCode === null) ch.kill('SIGTERM');
      await Promise.all(
        children.map((ch) => (ch.exitCode === null ? new Promise((res) => ch.on('close', res)) : undefined)),
      );
      await local?.close();
      await drop();
      rmSync(env.dataDir, { recursive: true, force: true });
    }
  }, 300_000);
});
