import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../src/app.js';
import type { LiveBus } from '../src/adapters/redis/live-bus.types.js';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import {
  createLive,
  frames,
  listenTls,
  mustOpen,
  openWs,
  type Conn,
  type LiveMessage,
  type Listening,
  secondNode,
} from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { buildLongTrack, pcmOf, readReferences } from './helpers/speech-fixtures.js';
import { backendLabel, startTestApp, usingRedis, type TestApp } from './helpers/test-app.js';

/**
 * A viewer who opens a live recording late gets what was said so far (docs/live.md, viewer
 * protocol): `ready`, every final segment published before it connected, in order, then the live
 * ones — each exactly once, even when a final is published while its backlog is being read.
 * Real server over WSS, real sphinx engine, real speech (the LibriVox track of test/fixtures).
 */
const RATE = 16_000;
const installed = sphinxAvailability(process.env.PATH ?? '');

interface Seg {
  id: string;
  seq: number;
  text: string;
  speaker: string;
}

const segsOf = (c: Conn) => c.messages.filter((m) => m.type === 'segment') as unknown as Seg[];
const idsOf = (c: Conn) => segsOf(c).map((s) => s.id);

/** The track split after its third utterance's pause: the part before, the part after. */
function track(dir: string): { before: Int16Array; after: Int16Array; words: string[] } {
  const refs = readReferences().filter((r) => r.file.startsWith('librivox'));
  const out = path.join(dir, 'track.wav');
  const { text, spans } = buildLongTrack(refs, out);
  const pcm = pcmOf(out);
  const cut = Math.round((spans[2]![1] + 1.9) * RATE);
  const words = text.split(' ').filter((w) => w.length > 5);
  return { before: pcm.subarray(0, cut), after: pcm.subarray(cut), words };
}

async function send(bot: Conn, pcm: Int16Array, first: number): Promise<number> {
  const all = frames(pcm);
  for (const f of all) bot.ws.send(f);
  const last = first + all.length - 1;
  await bot.waitFor((m) => m.type === 'ack' && m.seq === last);
  return last + 1;
}

/** The viewer bus of a node, to hold its backlog read at a chosen moment (test seam). */
function busOf(services: Services): LiveBus {
  return (services.live as unknown as { d: { bus: LiveBus } }).d.bus;
}

describe.skipIf(!installed.available)(
  `a late live viewer gets what was said so far (${backendLabel}) ${installed.reason ?? ''}`,
  () => {
    let t: TestApp;
    let server: Listening;
    let owner: TestUser;
    let dir: string;
    const ip = freshIp();

    beforeAll(async () => {
      t = await startTestApp({ env: recordingEnv().env });
      server = await listenTls(t.services);
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      dir = mkdtempSync(path.join(tmpdir(), 'sotto-late-'));
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await server?.close();
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('earlier finals first, then live ones, each exactly once, across a final published during the hand-over', async () => {
      const { before, after, words } = track(dir);
      const id = await createLive(t, owner.accessToken, ip);
      const watch = `/api/v1/recordings/${id}/watch`;
      const early = await mustOpen(server, watch, { token: owner.accessToken });
      await early.waitFor((m) => m.type === 'ready');
      const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      bot.ws.send(JSON.stringify({ type: 'start', participant: 'Reader' }));
      let next = await send(bot, before, 0);
      await eventually(async () => (segsOf(early).length >= 2 ? true : undefined), 60_000);

      // Late: after two segments were published, before the rest of the audio.
      const said = idsOf(early);
      const late = await mustOpen(server, watch, { token: owner.accessToken });
      const backlog = await late.waitFor((m) => m.type === 'segment' && m.id === said.at(-1));
      expect(late.messages[0]).toEqual({ type: 'ready' });
      expect(late.messages.indexOf(backlog)).toBe(said.length);
      expect(idsOf(late).slice(0, said.length)).toEqual(said);
      expect(segsOf(late).map((s) => s.text)).toEqual(
        segsOf(early)
          .slice(0, said.length)
          .map((s) => s.text),
      );

      // Two more late viewers whose backlog read is held until a new final was published: one
      // reads the backlog before that final (it must come live), one after (it must not repeat).
      const bus = busOf(t.services);
      const history = bus.history.bind(bus);
      const newFinal = (n: number) =>
        eventually(async () => (segsOf(early).length > n ? true : undefined), 60_000);
      let calls = 0;
      bus.history = async (rid) => {
        const n = segsOf(early).length;
        if (calls++ === 0) {
          const snapshot = await history(rid);
          await newFinal(n);
          return snapshot;
        }
        await newFinal(n);
        return history(rid);
      };
      const streaming = send(bot, after, next);
      const [gapViewer, dupViewer] = await Promise.all([
        mustOpen(server, watch, { token: owner.accessToken }),
        mustOpen(server, watch, { token: owner.accessToken }),
      ]);
      next = await streaming;
      await eventually(async () => (calls >= 2 ? true : undefined), 60_000);
      bus.history = history;
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      for (const c of [early, late, gapViewer, dupViewer]) expect((await c.closed).code).toBe(1000);

      const all = idsOf(early);
      expect(all.length).toBeGreaterThanOrEqual(4);
      expect(new Set(all).size).toBe(all.length);
      for (const c of [late, gapViewer, dupViewer]) {
        expect(idsOf(c)).toEqual(all);
        expect(c.messages[0]).toEqual({ type: 'ready' });
        expect(c.messages.at(-1)).toEqual({ type: 'stopped', status: 'queued' });
        // No partial after its final, for anyone.
        const finalAt = new Map(c.messages.map((m, i) => [m.type === 'segment' ? m.id : '', i]));
        c.messages.forEach((m, i) => {
          if (m.type === 'partial') expect(finalAt.get(m.id as string) ?? Infinity).toBeGreaterThan(i);
        });
      }
      // Transcript text never reaches a log line.
      const logs = t.logs.join('\n');
      for (const w of words) expect(logs).not.toContain(w);
    }, 180_000);

    it('the backlog follows the watch rules: another org, a colleague and a stranger get exactly 404', async () => {
      const id = await createLive(t, owner.accessToken, ip);
      const other = await createOrgWithUser(t.services, { role: 'owner' });
      const member = await addUser(t.services, owner.orgId, { role: 'member' });
      for (const u of [other, member]) {
        expect(await openWs(server, `/api/v1/recordings/${id}/watch`, { token: u.accessToken })).toBe(404);
        const ticket = await t.app.inject({
          method: 'POST',
          url: `/api/v1/recordings/${id}/live-ticket`,
          headers: bearer(u.accessToken),
          remoteAddress: ip,
        });
        expect(ticket.statusCode).toBe(404);
      }
      // Hostile ids: a random one, and one that is not an id at all.
      expect(
        await openWs(server, `/api/v1/recordings/${crypto.randomUUID()}/watch`, { token: owner.accessToken }),
      ).toBe(404);
      expect(
        await openWs(server, `/api/v1/recordings/..%2F..%2Fetc/watch`, { token: owner.accessToken }),
      ).toBe(400);
      // A viewer may not talk, late or not.
      const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await viewer.waitFor((m) => m.type === 'ready');
      viewer.ws.send('{"type":"segment","text":"forged"}');
      expect((await viewer.closed).code).toBe(4400);
    });
  },
);

/** With Redis: the backlog is kept beside the channel, sealed, and a viewer on another node gets it. */
describe.skipIf(!installed.available || !usingRedis)(
  `a late viewer on another node (${backendLabel}) ${usingRedis ? '' : 'needs REDIS_URL'}`,
  () => {
    let t: TestApp;
    let b: Awaited<ReturnType<typeof secondNode>>;
    let nodeA: Listening;
    let owner: TestUser;
    let dir: string;
    const ip = freshIp();

    beforeAll(async () => {
      t = await startTestApp({ env: recordingEnv().env });
      b = await secondNode(t);
      nodeA = await listenTls(t.services);
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      dir = mkdtempSync(path.join(tmpdir(), 'sotto-late-'));
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await b?.close();
      await nodeA?.close();
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('audio on node A, a late viewer on node B: the earlier finals, once; Redis holds ciphertext, dropped at the stop', async () => {
      const { before, after, words } = track(dir);
      const id = await createLive(t, owner.accessToken, ip);
      const early = await mustOpen(nodeA, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await early.waitFor((m) => m.type === 'ready');
      const bot = await mustOpen(nodeA, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      bot.ws.send(JSON.stringify({ type: 'start', participant: 'Reader' }));
      const next = await send(bot, before, 0);
      await eventually(async () => (segsOf(early).length >= 2 ? true : undefined), 60_000);
      const said = idsOf(early);

      const prefix = t.services.config.redisPrefix;
      const kept = await b.redis.lrangeBuffer(`${prefix}live-finals:${id}`, 0, -1);
      expect(kept.length).toBeGreaterThanOrEqual(said.length);
      const raw = Buffer.concat(kept).toString('latin1');
      for (const w of words) expect(raw).not.toContain(w);
      expect(raw).not.toContain('segment');

      const late = await mustOpen(b.server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await late.waitFor((m: LiveMessage) => m.type === 'segment' && m.id === said.at(-1));
      expect(idsOf(late).slice(0, said.length)).toEqual(said);
      // Another org's owner on node B: exactly 404, like any watch.
      const other = await createOrgWithUser(t.services, { role: 'owner' });
      expect(await openWs(b.server, `/api/v1/recordings/${id}/watch`, { token: other.accessToken })).toBe(
        404,
      );

      await send(bot, after, next);
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      expect((await late.closed).code).toBe(1000);
      expect((await early.closed).code).toBe(1000);
      expect(idsOf(late)).toEqual(idsOf(early));
      await eventually(async () =>
        (await b.redis.exists(`${prefix}live-finals:${id}`, `${prefix}live-partials:${id}`)) === 0
          ? true
          : undefined,
      );
    }, 180_000);
  },
);
