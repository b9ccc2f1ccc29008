import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wordErrorRate } from '../src/domain/wer.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusEntry, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import {
  createLive,
  listenTls,
  mustOpen,
  openWs,
  secondNode,
  streamPcm,
  type Listening,
} from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, usingRedis, type TestApp } from './helpers/test-app.js';

/**
 * Two API nodes sharing one database and one Redis: audio ingested on node A reaches a viewer
 * connected to node B through Redis pub/sub, sealed (no transcript text on the wire).
 */
const skip = !usingRedis || !hasCorpus;
const why = !usingRedis ? 'needs REDIS_URL' : hasCorpus ? '' : noCorpusReason;

describe.skipIf(skip)(`live fan-out between two nodes (${backendLabel}) ${why}`, () => {
  let t: TestApp;
  let b: Awaited<ReturnType<typeof secondNode>>;
  let nodeA: Listening;
  let owner: TestUser;
  const ip = freshIp();

  beforeAll(async () => {
    t = await startTestApp({ env: recordingEnv().env });
    b = await secondNode(t);
    nodeA = await listenTls(t.services);
    owner = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await b?.close();
    await nodeA?.close();
    await t?.close();
  });

  it('a viewer on node B sees the segments of audio ingested on node A; Redis carries ciphertext only', async () => {
    const ref = corpusEntry('call-02');
    const { pcm } = readCorpusMono('call-02');
    const id = await createLive(t, owner.accessToken, ip);
    // What crosses Redis, as an eavesdropper on the channel would see it.
    const spy = new Redis(process.env.REDIS_URL!);
    const wire: Buffer[] = [];
    spy.on('messageBuffer', (_c: Buffer, m: Buffer) => wire.push(m));
    await spy.subscribe(`${t.services.config.redisPrefix}live:${id}`);

    const viewer = await mustOpen(b.server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await viewer.waitFor((m) => m.type === 'ready');
    const bot = await mustOpen(nodeA, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
    await streamPcm(bot, pcm, 'Desk');
    // The session's audio is in node A's memory: another participant may not start one on node B.
    const ownerKey = `${t.services.config.redisPrefix}live-owner:${id}`;
    expect(await b.redis.get(ownerKey)).not.toBeNull();
    expect(await openWs(b.server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken })).toBe(409);
    bot.ws.send(JSON.stringify({ type: 'stop' }));
    expect((await viewer.closed).code).toBe(1000);
    spy.disconnect();
    // The claim is released once the session has ended.
    await eventually(async () => ((await b.redis.get(ownerKey)) === null ? true : undefined));

    const segs = viewer.messages.filter((m) => m.type === 'segment') as unknown as {
      speaker: string;
      text: string;
    }[];
    expect(segs.length).toBeGreaterThanOrEqual(3);
    expect(segs.every((s) => s.speaker === 'Desk')).toBe(true);
    expect(wordErrorRate(ref.text, segs.map((s) => s.text).join(' ')).wer).toBeLessThan(0.5);
    expect(viewer.messages.at(-1)).toEqual({ type: 'stopped', status: 'queued' });

    // One sealed bus message per event the viewer got (segments, partials, the stop's progress
    // and its end), none besides.
    expect(wire.length).toBe(viewer.messages.filter((m) => m.type !== 'ready').length);
    const raw = Buffer.concat(wire).toString('latin1');
    for (const s of segs)
      for (const word of s.text.split(' ').filter((w) => w.length > 4)) expect(raw).not.toContain(word);
    expect(raw).not.toContain('segment');
  }, 120_000);
});
