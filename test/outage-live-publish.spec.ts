import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/database.js';
import { backlogRetention } from '../src/services/live/live-publisher.js';
import type { LiveEvent } from '../src/services/live/live-viewers.js';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, eventually } from './helpers/fixtures.js';
import { busOf, createLive, sealLiveEvent, frames, mustOpen, type Conn } from './helpers/live.js';
import { instanceFactory } from './helpers/live-instances.js';
import { recordingEnv } from './helpers/recordings.js';
import { buildLongTrack, pcmOf, readReferences } from './helpers/speech-fixtures.js';
import { backendLabel, freshDatabase, usingPostgres } from './helpers/test-app.js';
import { cuttableDatabase } from './helpers/cuttable-database.js';

/**
 * Issue 17, item 5: live segments recognised while the database is unreachable are not lost.
 * Publishing seals each event in a database transaction; during the outage that fails, and the
 * events used to vanish. Now they wait in order and go out once the database answers: a viewer
 * connected through the outage gets every final, numbered without a gap.
 *
 * The database is the real PostgreSQL behind a TCP proxy this test cuts (as outage-http.spec.ts
 * does): stopping the shared server would break every other spec running against it. PGlite runs
 * in this process and cannot become unreachable, so the spec needs PostgreSQL.
 */
const RATE = 16_000;
const installed = sphinxAvailability(process.env.PATH ?? '');
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seqsOf = (c: Conn) => c.messages.filter((m) => m.type === 'segment').map((m) => m.seq as number);

/** A fresh database behind a proxy the test can cut, an app instance on it and an org owner. */
async function behindCuttableDatabase(extra: Record<string, string>) {
  const fresh = await freshDatabase();
  cleanup.push(fresh.drop);
  const proxy = await cuttableDatabase(fresh.url!);
  cleanup.push(proxy.cut);
  const db = await openDatabase({ databaseUrl: proxy.url, poolSize: 4 });
  const { env, dataDir } = recordingEnv({ SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000', ...extra });
  cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const inst = await instanceFactory(db, env)();
  cleanup.push(async () => {
    await inst.close().catch(() => undefined);
    await db.close();
  });
  const owner = await createOrgWithUser(inst.services, { role: 'owner' });
  return { proxy, inst, ip: freshIp(), owner };
}

describe.skipIf(!usingPostgres || !installed.available)(
  `live segments through a database outage (${backendLabel})${usingPostgres ? '' : ': needs PostgreSQL (PGlite cannot become unreachable)'} ${installed.reason ?? ''}`,
  () => {
    it('a viewer gets every final, in order and without a gap, once the database is back', async () => {
      const { proxy, inst, ip, owner } = await behindCuttableDatabase({
        SOTTO_LIVE_PARTIALS: 'false',
        SOTTO_LIVE_RECHECK_SECONDS: '1',
        // The engine's executables are looked up along the configured PATH.
        PATH: process.env.PATH ?? '',
      });
      const dir = mkdtempSync(path.join(tmpdir(), 'sotto-live-outage-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const refs = readReferences().filter((r) => r.file.startsWith('librivox'));
      const out = path.join(dir, 'track.wav');
      const { spans } = buildLongTrack(refs, out);
      const pcm = pcmOf(out);
      const cutAt = Math.round((spans[1]![1] + 1.5) * RATE);

      const id = await createLive(inst, owner.accessToken, ip);
      const viewer = await mustOpen(inst.server, `/api/v1/recordings/${id}/watch`, {
        token: owner.accessToken,
      });
      await viewer.waitFor((m) => m.type === 'ready');
      const bot = await mustOpen(inst.server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      bot.ws.send(JSON.stringify({ type: 'start', participant: 'Reader' }));
      const before = frames(pcm.subarray(0, cutAt));
      for (const f of before) bot.ws.send(f);
      await bot.waitFor((m) => m.type === 'ack' && m.seq === before.length - 1);
      await eventually(async () => (seqsOf(viewer).length >= 1 ? true : undefined), 60_000);
      const seenBefore = seqsOf(viewer).length;

      // The outage: the rest of the speech arrives and is recognised while nothing can be sealed.
      await proxy.cut();
      for (const f of frames(pcm.subarray(cutAt))) bot.ws.send(f);
      await eventually(
        async () =>
          inst.logs.some((l) => l.includes('live events held until the store is back')) ? true : undefined,
        120_000,
      );
      await sleep(3000);
      const duringOutage = seqsOf(viewer).length;
      await proxy.restore();

      await eventually(
        async () =>
          inst.logs.some((l) => l.includes('live events held through the outage are out')) ? true : undefined,
        60_000,
      );
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      await viewer.waitFor((m) => m.type === 'stopped', 180_000);
      const seqs = seqsOf(viewer);
      // Held events came out after the outage, not during it.
      expect(seqs.length).toBeGreaterThan(duringOutage);
      expect(seqs.length).toBeGreaterThan(seenBefore);
      // Every final, once, in order: 1, 2, 3, … with no gap.
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      const out2 = inst.logs.find((l) => l.includes('live events held through the outage are out'))!;
      expect(JSON.parse(out2)).toMatchObject({ dropped: 0 });
    }, 400_000);

    it('finals already on the bus when the database goes away reach a viewer once it is back', async () => {
      // The race the spec above can meet by chance, made certain: the events were sealed before
      // the cut, and the viewer's node must open them (the org's key, under RLS) during it.
      const { proxy, inst, ip, owner } = await behindCuttableDatabase({});
      const id = await createLive(inst, owner.accessToken, ip);
      const viewer = await mustOpen(inst.server, `/api/v1/recordings/${id}/watch`, {
        token: owner.accessToken,
      });
      await viewer.waitFor((m) => m.type === 'ready');
      const finals: LiveEvent[] = [1, 2].map((seq) => ({
        type: 'segment',
        id: `s${seq}`,
        seq,
        speaker: 'Reader',
        start: seq,
        end: seq + 1,
        text: `final ${seq}`,
        words: [],
      }));
      const sealed: Buffer[] = [];
      for (const e of finals) sealed.push(await sealLiveEvent(inst, owner.orgId, id, e));

      await proxy.cut();
      const bus = busOf(inst.services);
      for (const [i, payload] of sealed.entries())
        await bus.publish(id, payload, backlogRetention(finals[i]!, inst.services.config.live, undefined));
      await eventually(
        async () =>
          inst.logs.some((l) => l.includes('live event waits for the database')) ? true : undefined,
        30_000,
      );
      await sleep(1500);
      expect(seqsOf(viewer)).toEqual([]);
      await proxy.restore();

      await viewer.waitFor((m) => m.type === 'segment' && m.id === 's2', 30_000);
      expect(seqsOf(viewer)).toEqual([1, 2]);
      expect(inst.logs.some((l) => l.includes('live event could not be opened'))).toBe(false);
    }, 120_000);
  },
);
