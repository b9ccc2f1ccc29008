import { createHmac, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../src/app.js';
import { sha256Hex } from '../src/crypto/random.js';
import { RedisLiveBus } from '../src/adapters/redis/live-bus.adapter.js';
import type { LiveSpools } from '../src/services/live/live-spool.js';
import { backlogRetention } from '../src/services/live/live-publisher.js';
import {
  type LiveEvent,
  type LiveServerMessage,
  type LiveSocket,
} from '../src/services/live/live-viewers.js';
import { freshIp } from './helpers/auth-client.js';
import { actorOf, bearer, createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import {
  busOf,
  createLive,
  sealLiveEvent,
  frames,
  listenTls,
  mustOpen,
  type Listening,
  type LiveMessage,
} from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, usingRedis, type TestApp } from './helpers/test-app.js';

/**
 * The live backlog beside the bus (docs/live.md, "Late viewers"), as the security review of the
 * live viewer left it: the hand-over from backlog to live events is exact by sequence number (no
 * event lost, none twice, no stale partial after a newer one), a burst of backlog does not buy a
 * slow reader a larger buffer for good, a partial's slot in Redis is an HMAC under the
 * recording's spool key, and deleting a recording drops its backlog. Real server over WSS, real
 * database and keys, the real bus of the node (in memory, or Redis with REDIS_URL); events are
 * published sealed exactly as the ingest side seals them, so the order is chosen by the test.
 */
const spoolsOf = (services: Services): LiveSpools =>
  (services.live as unknown as { d: { spools: LiveSpools } }).d.spools;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const segment = (id: string, seq: number, speaker: string, text: string): LiveEvent => ({
  type: 'segment',
  id,
  seq,
  speaker,
  start: seq,
  end: seq + 1,
  text,
  words: [],
});
const partial = (id: string, speaker: string, text: string): LiveEvent => ({
  type: 'partial',
  id,
  speaker,
  start: 0,
  end: 1,
  text,
});
/** What a viewer saw, compactly: type, then id and text, or code / status. */
const shape = (m: LiveMessage | LiveServerMessage): string =>
  m.type === 'segment' || m.type === 'partial'
    ? `${m.type} ${String(m.id)} ${String(m.text)}`
    : m.type === 'error'
      ? `error ${String(m.code)}`
      : m.type === 'stopped'
        ? `stopped ${String(m.status)}`
        : m.type;

/** A socket the test drains by hand: `bufferedAmount` is what it sent and the test did not drain. */
class HeldSocket implements LiveSocket {
  sent: LiveServerMessage[] = [];
  bufferedAmount = 0;
  closedWith: number | undefined;
  send(message: LiveServerMessage): void {
    this.sent.push(message);
    this.bufferedAmount += JSON.stringify(message).length;
  }
  ping(): void {}
  close(code: number): void {
    this.closedWith ??= code;
  }
}

describe(`live hand-over, backlog and deletion (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;
  const ip = freshIp();
  const slotKey = randomBytes(32);

  /** Sealed for the recording and published on the node's bus, as LiveService does. */
  async function publish(orgId: string, id: string, event: LiveEvent, key = slotKey): Promise<number> {
    const payload = await sealLiveEvent(t, orgId, id, event);
    return busOf(t.services).publish(id, payload, backlogRetention(event, t.services.config.live, key));
  }

  beforeAll(async () => {
    t = await startTestApp({ env: recordingEnv().env });
    server = await listenTls(t.services);
    owner = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('events published while the backlog is read: each once, in order, no partial older than one shown', async () => {
    const id = await createLive(t, owner.accessToken, ip);
    await publish(owner.orgId, id, segment('a', 1, 'Reader', 'alpha'));
    await publish(owner.orgId, id, partial('b', 'Reader', 'one'));
    // The viewer has subscribed; before its backlog is read, the partial grows twice and an error
    // (numbered, never kept) goes out. All three reach its subscription; the backlog then holds the
    // newest partial only.
    const bus = busOf(t.services);
    const history = bus.history.bind(bus);
    let held = false;
    bus.history = async (rid) => {
      if (rid === id && !held) {
        held = true;
        await publish(owner.orgId, id, partial('b', 'Reader', 'one two'));
        await publish(owner.orgId, id, partial('b', 'Reader', 'one two three'));
        await publish(owner.orgId, id, { type: 'error', code: 'live_lagging' });
        await sleep(300); // delivered to the subscription (and decrypted) before the read
      }
      return history(rid);
    };
    let viewer;
    try {
      viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await viewer.waitFor((m) => m.type === 'error');
    } finally {
      bus.history = history;
    }
    await publish(owner.orgId, id, segment('b', 2, 'Reader', 'one two three four'));
    await publish(owner.orgId, id, partial('c', 'Guest', 'hello'));
    await publish(owner.orgId, id, { type: 'stopped', status: 'queued' });
    expect((await viewer.closed).code).toBe(1000);
    expect(viewer.messages.map(shape)).toEqual([
      'ready',
      'segment a alpha',
      'partial b one two three',
      'error live_lagging',
      'segment b one two three four',
      'partial c hello',
      'stopped queued',
    ]);
  });

  it('the backlog goes in publication order: a partial published before a final of another utterance stays before it', async () => {
    const id = await createLive(t, owner.accessToken, ip);
    await publish(owner.orgId, id, partial('x', 'Guest', 'still talking'));
    await publish(owner.orgId, id, segment('y', 1, 'Reader', 'done'));
    await publish(owner.orgId, id, partial('z', 'Reader', 'next'));
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await viewer.waitFor((m) => m.type === 'partial' && m.id === 'z');
    expect(viewer.messages.map(shape)).toEqual([
      'ready',
      'partial x still talking',
      'segment y done',
      'partial z next',
    ]);
    viewer.ws.close();
  });

  it('a backlog lets a viewer fall behind while it is read, and no longer once it is', async () => {
    const id = await createLive(t, owner.accessToken, ip);
    // 1.2 MB of backlog, beyond the 1 MiB a live viewer may lag behind.
    for (let i = 1; i <= 3; i++)
      await publish(owner.orgId, id, segment(`big${i}`, i, 'Reader', 'word '.repeat(80_000)));
    const socket = new HeldSocket();
    const stop = await t.services.live.viewers.watch(actorOf(owner, 'owner', ip), id, socket);
    try {
      expect(socket.sent.map(shape).slice(0, 2)).toEqual(['ready', 'segment big1 ' + 'word '.repeat(80_000)]);
      expect(socket.bufferedAmount).toBeGreaterThan(1024 * 1024);
      // Still unread: a live event is sent all the same (the backlog is not a slow reader).
      await publish(owner.orgId, id, segment('s1', 4, 'Reader', 'first'));
      await eventually(async () => (socket.sent.length === 5 ? true : undefined));
      expect(socket.closedWith).toBeUndefined();
      // The viewer read everything; then it stops reading and falls 1.1 MiB behind.
      socket.bufferedAmount = 0;
      await publish(owner.orgId, id, segment('s2', 5, 'Reader', 'second'));
      await eventually(async () => (socket.sent.length === 6 ? true : undefined));
      socket.bufferedAmount = 1.1 * 1024 * 1024;
      await publish(owner.orgId, id, segment('s3', 6, 'Reader', 'third'));
      await eventually(async () => (socket.closedWith !== undefined ? true : undefined));
      expect(socket.closedWith).toBe(4429);
      expect(socket.sent.map(shape).at(-1)).toBe('segment s2 second');
    } finally {
      stop();
    }
  });

  it('a partial is kept under an HMAC of its speaker by the spool key: no name, nothing to precompute', async () => {
    const id = await createLive(t, owner.accessToken, ip);
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
    bot.ws.send(JSON.stringify({ type: 'start', participant: 'Dr Rossi' }));
    const all = frames(new Int16Array(3200));
    for (const f of all) bot.ws.send(f);
    await bot.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
    // A partial as the session publishes it (the recogniser's timing is not what is tested).
    const session = (
      t.services.live as unknown as {
        live: { all: Map<string, { d: { events: { partial(p: unknown): Promise<void> } } }> };
      }
    ).live.all.get(id)!;
    await session.d.events.partial({ id: 'u1', speaker: 'Dr Rossi', start: 0, end: 1, text: 'hello' });
    const kept = await busOf(t.services).history(id);
    expect(kept.partials.length).toBe(1);
    const spoolKey = await spoolsOf(t.services).key(owner.orgId, id);
    const slot = createHmac('sha256', spoolKey).update('sotto/live-partial-slot|Dr Rossi').digest('hex');
    if (usingRedis) {
      const redis = new Redis(process.env.REDIS_URL!);
      try {
        const fields = await redis.hkeys(`${t.services.config.redisPrefix}live-partials:${id}`);
        expect(fields).toEqual([slot.slice(0, 32)]);
        expect(fields[0]).not.toBe(sha256Hex(`${id}|Dr Rossi`));
        const keys = await redis.keys(`${t.services.config.redisPrefix}live*${id}*`);
        expect(keys.join(' ')).not.toContain('Rossi');
      } finally {
        redis.disconnect();
      }
    }
    bot.ws.close();
  });

  it('a sequence that starts again (Redis lost its keys) does not silence connected viewers', async () => {
    // Its own org: the suite's owner already has as many live recordings as one org may run.
    const own = await createOrgWithUser(t.services, { role: 'owner' });
    const id = await createLive(t, own.accessToken, ip);
    await publish(own.orgId, id, segment('a', 1, 'Reader', 'alpha'));
    await publish(own.orgId, id, segment('b', 2, 'Reader', 'beta'));
    await publish(own.orgId, id, partial('c', 'Reader', 'gam'));
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: own.accessToken });
    await viewer.waitFor((m) => m.type === 'partial' && m.id === 'c');
    await publish(own.orgId, id, partial('c', 'Reader', 'gamma and'));
    await viewer.waitFor((m) => m.type === 'partial' && m.text === 'gamma and');
    // The counter and backlog vanish (a Redis restart without persistence): numbering starts at 1.
    await busOf(t.services).forget(id);
    expect(await publish(own.orgId, id, segment('c', 3, 'Reader', 'gamma and delta'))).toBe(1);
    expect(await publish(own.orgId, id, partial('d', 'Reader', 'eps'))).toBe(2);
    await publish(own.orgId, id, { type: 'stopped', status: 'queued' });
    expect((await viewer.closed).code).toBe(1000);
    expect(viewer.messages.map(shape)).toEqual([
      'ready',
      'segment a alpha',
      'segment b beta',
      'partial c gam',
      'partial c gamma and',
      'segment c gamma and delta',
      'partial d eps',
      'stopped queued',
    ]);
  });

  it('deleting a live recording drops its backlog and sequence from the bus', async () => {
    const id = await createLive(t, owner.accessToken, ip);
    await publish(owner.orgId, id, segment('a', 1, 'Reader', 'alpha'));
    await publish(owner.orgId, id, partial('b', 'Reader', 'beta'));
    const bus = busOf(t.services);
    expect((await bus.history(id)).seq).toBe(2);
    const res = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/recordings/${id}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(res.statusCode).toBe(204);
    expect(await bus.history(id)).toEqual({ finals: [], partials: [], seq: 0 });
    // An ingest node that has not noticed the deletion yet keeps publishing: nothing is numbered,
    // kept or delivered any more (no backlog rebuilt, no sequence restarting at 1).
    const delivered: number[] = [];
    const stop = await bus.subscribe(id, (_p, seq) => delivered.push(seq));
    expect(await publish(owner.orgId, id, segment('c', 3, 'Reader', 'gamma'))).toBe(0);
    expect(await publish(owner.orgId, id, partial('d', 'Reader', 'delta'))).toBe(0);
    await sleep(100);
    await stop();
    expect(delivered).toEqual([]);
    expect(await bus.history(id)).toEqual({ finals: [], partials: [], seq: 0 });
    if (usingRedis) {
      const redis = new Redis(process.env.REDIS_URL!);
      try {
        // Only the tombstones (the bus's, for at least a day; the spool's copy's: no record can
        // come back), nothing else.
        const prefix = t.services.config.redisPrefix;
        expect((await redis.keys(`${prefix}live-*:${id}`)).sort()).toEqual([
          `${prefix}live-deleted:${id}`,
          `${prefix}live-spool-gone:${id}`,
        ]);
        expect(await redis.pttl(`${prefix}live-deleted:${id}`)).toBeGreaterThan(23 * 3600 * 1000);
      } finally {
        redis.disconnect();
      }
    }
  });

  it.skipIf(!usingRedis)('Redis down: burying a deleted recording logs and never throws', async () => {
    const redis = new Redis(process.env.REDIS_URL!, { enableOfflineQueue: false, lazyConnect: true });
    const warned: string[] = [];
    const bus = new RedisLiveBus(redis, `${t.services.config.redisPrefix}down-`, {
      warn: (_o: unknown, msg: string) => void warned.push(msg),
    } as never);
    await expect(bus.bury(crypto.randomUUID())).resolves.toBeUndefined();
    expect(warned).toEqual(['live backlog of a deleted recording not dropped']);
    await bus.close();
    redis.disconnect();
  });

  it.skipIf(!usingRedis)(
    'Redis: a second subscriber of a channel whose SUBSCRIBE is on its way waits for it',
    async () => {
      const redis = new Redis(process.env.REDIS_URL!);
      const bus = new RedisLiveBus(redis, `${t.services.config.redisPrefix}race-`, t.services.logger);
      try {
        const id = crypto.randomUUID();
        const got: number[] = [];
        const first = bus.subscribe(id, () => undefined); // a new connection: still connecting
        await bus.subscribe(id, (_payload, seq) => got.push(seq));
        const seq = await bus.publish(id, Buffer.from('sealed'), { kind: 'none', ttlMs: 60_000 });
        await eventually(async () => (got.length > 0 ? true : undefined), 2000);
        expect(got).toEqual([seq]);
        await (
          await first
        )();
      } finally {
        await bus.close();
        redis.disconnect();
      }
    },
  );
});
