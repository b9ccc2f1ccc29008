import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveRetain } from '../src/adapters/redis/live-bus.types.js';
import type { LiveEvent } from '../src/services/live/live-viewers.js';
import { freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import {
  busOf,
  createLive,
  sealLiveEvent,
  listenTls,
  mustOpen,
  type Conn,
  type Listening,
} from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Issue 16: which finals a viewer was sent is kept once per recording on a node (the channel),
 * not per viewer, so a viewer of a recording that runs for hours costs the same at its end as at
 * its start. What viewers receive is unchanged: every final once, in order, also for a late
 * viewer; a second copy of a final (a restarted ingest recognising its last utterance again) is
 * dropped; no partial after its final.
 */

/** Entries of every Map, Set and array reachable from `value`: what grows with what it holds. */
function entries(value: unknown, seen = new Set<unknown>()): number {
  if (value === null || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  const items =
    value instanceof Map || value instanceof Set
      ? [...value.values()]
      : Array.isArray(value)
        ? value
        : undefined;
  if (items) return items.length + items.reduce((n: number, v) => n + entries(v, seen), 0);
  return Object.values(value).reduce((n: number, v) => n + entries(v, seen), 0);
}

interface ChannelView {
  sockets: Map<unknown, object>;
  finals: Map<string, number>;
}

describe(`live viewers' memory does not grow with finals (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;
  const ip = freshIp();

  beforeAll(async () => {
    const { env } = recordingEnv({ SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
    t = await startTestApp({ env });
    server = await listenTls(t.services);
    owner = await createOrgWithUser(t.services, { role: 'owner' });
  });

  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('per viewer: the same size after 5 and after 205 finals; every final once, also late', async () => {
    const id = await createLive(t, owner.accessToken, ip, 'Long');
    const bus = busOf(t.services);
    const channel = () =>
      (t.services.live.viewers as unknown as { channels: Map<string, ChannelView> }).channels.get(id)!;
    const ttlMs = 60_000;
    const publish = async (event: LiveEvent, retain: LiveRetain) => {
      await bus.publish(id, await sealLiveEvent(t, owner.orgId, id, event), retain);
    };
    const final = (n: number): LiveEvent => ({
      type: 'segment',
      id: `f${n}`,
      seq: n,
      speaker: 'Desk',
      start: n,
      end: n + 0.5,
      text: `final ${n}`,
      words: [],
    });
    const partial = (finalId: string, text: string): LiveEvent => ({
      type: 'partial',
      id: finalId,
      speaker: 'Desk',
      start: 0,
      end: 1,
      text,
    });
    const finals = async (from: number, to: number) => {
      for (let n = from; n <= to; n++) await publish(final(n), { kind: 'final', ttlMs });
    };
    const watch = async (): Promise<Conn> => {
      const c = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await c.waitFor((m) => m.type === 'ready');
      return c;
    };
    const got = (c: Conn) => c.messages.filter((m) => m.type === 'segment').map((m) => m.id as string);
    const upTo = (n: number) => Array.from({ length: n }, (_, i) => `f${i + 1}`);
    const viewerSizes = () => [...channel().sockets.values()].map((v) => entries(v));

    const viewers = await Promise.all([watch(), watch(), watch()]);
    await finals(1, 5);
    // Then a second copy of f3, a partial of f5 (after its final) and one of an utterance going on.
    await publish(final(3), { kind: 'final', ttlMs });
    await publish(partial('f5', 'stale'), { kind: 'partial', slot: 'desk', ttlMs });
    await publish(partial('f6', 'speaking'), { kind: 'partial', slot: 'desk', ttlMs });
    await Promise.all(viewers.map((v) => v.waitFor((m) => m.type === 'partial' && m.text === 'speaking')));
    for (const v of viewers) {
      expect(got(v)).toEqual(upTo(5));
      expect(v.messages.filter((m) => m.type === 'partial').map((m) => m.text)).toEqual(['speaking']);
    }
    const before = viewerSizes();
    expect(before).toHaveLength(3);

    await finals(6, 205);
    await Promise.all(viewers.map((v) => v.waitFor((m) => m.type === 'segment' && m.id === 'f205')));
    // Two hundred finals later, each viewer holds exactly what it held (nothing per final) ...
    expect(viewerSizes()).toEqual(before);
    // ... and the recording's channel holds one entry per final, for all three.
    expect(channel().finals.size).toBe(205);

    // A late viewer: every final once, in order, from the backlog (with its copy of f3).
    const late = await watch();
    await late.waitFor((m) => m.type === 'segment' && m.id === 'f205');
    expect(got(late)).toEqual(upTo(205));
    // A second copy of an old final reaches nobody; the next final everyone, once.
    await publish(final(100), { kind: 'final', ttlMs });
    await finals(206, 206);
    const all = [...viewers, late];
    await Promise.all(all.map((v) => v.waitFor((m) => m.type === 'segment' && m.id === 'f206')));
    for (const v of all) expect(got(v)).toEqual(upTo(206));
    for (const v of all) v.ws.close();
  }, 60_000);

  it('a sequence that starts again: a copy numbered like its original is still a copy, new finals come', async () => {
    const id = await createLive(t, owner.accessToken, ip, 'Renumbered');
    const bus = busOf(t.services);
    const publish = async (event: LiveEvent, retain: LiveRetain) =>
      bus.publish(id, await sealLiveEvent(t, owner.orgId, id, event), retain);
    const ttlMs = 60_000;
    const seg = (sid: string, text: string): LiveEvent => ({
      type: 'segment',
      id: sid,
      seq: 1,
      speaker: 'Desk',
      start: 0,
      end: 1,
      text,
      words: [],
    });
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await viewer.waitFor((m) => m.type === 'ready');
    expect(await publish(seg('a', 'alpha'), { kind: 'final', ttlMs })).toBe(1);
    expect(await publish(seg('b', 'beta'), { kind: 'final', ttlMs })).toBe(2);
    await viewer.waitFor((m) => m.type === 'segment' && m.id === 'b');
    // Redis lost the sequence and backlog; the ingest (restarted too) publishes "a" again, numbered
    // 1 like the copy the viewer has, then a new final and a partial of the old "b".
    await bus.forget(id);
    expect(await publish(seg('a', 'alpha'), { kind: 'final', ttlMs })).toBe(1);
    await publish(seg('c', 'gamma'), { kind: 'final', ttlMs });
    await publish(
      { type: 'partial', id: 'b', speaker: 'Desk', start: 0, end: 1, text: 'late' },
      {
        kind: 'none',
        ttlMs,
      },
    );
    await publish({ type: 'stopped', status: 'queued' }, { kind: 'none', ttlMs });
    await viewer.closed;
    expect(
      viewer.messages.filter((m) => m.type === 'segment' || m.type === 'partial').map((m) => m.id),
    ).toEqual(['a', 'b', 'c']);
  });
});
