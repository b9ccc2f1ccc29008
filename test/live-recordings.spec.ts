import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { KEEPALIVE_MS } from '../src/services/live/live-recheck.js';
import { wordErrorRate } from '../src/domain/wer.js';
import { auditRows, freshIp } from './helpers/auth-client.js';
import { corpusEntry, corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono, readCorpusStereo } from './helpers/corpus-audio.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  eventually,
  type TestUser,
} from './helpers/fixtures.js';
import {
  createLive,
  frames,
  listenTls,
  mustOpen,
  openWs,
  streamPcm,
  type Conn,
  type Listening,
  type LiveMessage,
} from './helpers/live.js';
import { pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Live recordings end to end: the server listening with TLS, `ws` clients as capture bots and
 * viewers, the real sphinx engine on corpus audio, the job worker for the final transcript.
 */
interface Segment {
  type: 'segment';
  seq: number;
  speaker: string;
  start: number;
  end: number;
  text: string;
  words: { w: string }[];
}

const segmentsOf = (c: Conn) => c.messages.filter((m): m is LiveMessage & Segment => m.type === 'segment');

describe(`live recordings over WSS (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  const ip = freshIp();

  beforeAll(async () => {
    const { env } = recordingEnv({
      SOTTO_LIVE_RECHECK_SECONDS: '1',
      SOTTO_LIVE_MAX_FRAME_BYTES: '16000',
      SOTTO_LIVE_MAX_PER_ORG: '20',
      // Polling a job for a minute from one address would exceed the default API budget.
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
    });
    // The corpus stream's live WER is checked: the real recognizer, not a replay.
    t = await startTestApp({ env, engine: 'real' });
    server = await listenTls(t.services);
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await t?.services.jobs.stop();
    await server?.close();
    await t?.close();
  });

  const get = (user: TestUser, url: string) =>
    t.app.inject({ method: 'GET', url, headers: bearer(user.accessToken), remoteAddress: ip });

  it('POST {mode:"live"} creates a live recording (201); other bodies stay 415/400', async () => {
    const id = await createLive(t, member.accessToken, ip, 'Intake, live');
    const rec = await get(member, `/api/v1/recordings/${id}`);
    expect(rec.json()).toMatchObject({ id, status: 'live', title: 'Intake, live' });
    const post = (payload: string, type: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/recordings',
        headers: { ...bearer(member.accessToken), 'content-type': type },
        payload,
        remoteAddress: ip,
      });
    expect((await post('{"title":"x"}', 'application/json')).statusCode).toBe(415);
    expect((await post('mode=live', 'text/plain')).statusCode).toBe(415);
    expect((await post('{"mode":"live","extra":1}', 'application/json')).statusCode).toBe(400);
    expect((await post('{"mode":"live","title":"a\\u0000b"}', 'application/json')).statusCode).toBe(400);
    // Support staff and other orgs cannot see it; a ticket for it is 404 for them.
    const ticket = await t.app.inject({
      method: 'POST',
      url: `/api/v1/recordings/${id}/live-ticket`,
      headers: bearer(other.accessToken),
      remoteAddress: ip,
    });
    expect(ticket.statusCode).toBe(404);
  });

  it('refuses the handshake before the upgrade: 401 without credentials, 404 across orgs and for colleagues', async () => {
    const id = await createLive(t, member.accessToken, ip);
    expect(await openWs(server, `/api/v1/recordings/${id}/live`)).toBe(401);
    expect(await openWs(server, `/api/v1/recordings/${id}/watch`)).toBe(401);
    expect(await openWs(server, `/api/v1/recordings/${id}/live`, { token: 'not-a-token' })).toBe(401);
    expect(await openWs(server, `/api/v1/recordings/${id}/live`, { token: other.accessToken })).toBe(404);
    expect(await openWs(server, `/api/v1/recordings/${id}/watch`, { token: other.accessToken })).toBe(404);
    // A member cannot watch (or feed) a colleague's live recording; the org owner can watch it.
    expect(await openWs(server, `/api/v1/recordings/${id}/watch`, { token: colleague.accessToken })).toBe(
      404,
    );
    expect(await openWs(server, `/api/v1/recordings/${id}/live`, { token: colleague.accessToken })).toBe(404);
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await viewer.waitFor((m) => m.type === 'ready');
    viewer.ws.close();
    // An upload (not live) cannot be streamed into: 409.
    const fake = crypto.randomUUID();
    expect(await openWs(server, `/api/v1/recordings/${fake}/live`, { token: member.accessToken })).toBe(404);
  });

  it('support staff watch only through an active grant, audited, and never ingest', async () => {
    const id = await createLive(t, member.accessToken, ip);
    const support = await createSupportUserFixture(t.services);
    const as = { token: support.accessToken, supportOrg: owner.orgId };
    expect(await openWs(server, `/api/v1/recordings/${id}/watch`, as)).toBe(404);
    const grant = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
      remoteAddress: ip,
    });
    expect(grant.statusCode).toBe(201);
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, as);
    await viewer.waitFor((m) => m.type === 'ready');
    const audited = await auditRows(t, 'support.access');
    expect(audited.some((r) => JSON.stringify(r.details).includes(id))).toBe(true);
    expect(await openWs(server, `/api/v1/recordings/${id}/live`, as)).toBe(403);
    // Revoking the grant closes the open viewer.
    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/org/support-grants/${(grant.json() as { id: string }).id}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(revoke.statusCode).toBe(204);
    expect((await viewer.closed).code).toBe(4404);
  });

  it('browser tickets: single use, bound to one recording, offered as a subprotocol or a query parameter', async () => {
    const id = await createLive(t, member.accessToken, ip);
    const otherId = await createLive(t, member.accessToken, ip);
    const ticket = async (rid: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: `/api/v1/recordings/${rid}/live-ticket`,
        headers: bearer(member.accessToken),
        remoteAddress: ip,
      });
      expect(res.statusCode).toBe(201);
      return (res.json() as { ticket: string }).ticket;
    };
    const t1 = await ticket(id);
    const c = await mustOpen(server, `/api/v1/recordings/${id}/live`, {
      protocols: ['sotto.live.v1', `sotto.ticket.${t1}`],
    });
    expect(c.ws.protocol).toBe('sotto.live.v1'); // the ticket is never echoed back
    c.ws.close();
    expect(
      await openWs(server, `/api/v1/recordings/${id}/live`, {
        protocols: ['sotto.live.v1', `sotto.ticket.${t1}`],
      }),
    ).toBe(401);
    const t2 = await ticket(otherId);
    expect(await openWs(server, `/api/v1/recordings/${id}/watch?ticket=${t2}`)).toBe(401);
    const t3 = await ticket(id);
    const v = await mustOpen(server, `/api/v1/recordings/${id}/watch?ticket=${t3}`);
    await v.waitFor((m) => m.type === 'ready');
    v.ws.close();
    expect(t.logs.join('\n')).not.toContain(t1);
    expect(t.logs.join('\n')).not.toContain(t3);
  });

  it('malformed frames close the socket with a 4xxx code; the recording keeps working', async () => {
    const id = await createLive(t, member.accessToken, ip);
    const path = `/api/v1/recordings/${id}/live`;
    const cases: [string, (c: Conn) => void, number][] = [
      ['audio before start', (c) => c.ws.send(Buffer.alloc(320)), 4400],
      ['bad JSON', (c) => c.ws.send('{"type":'), 4400],
      ['unknown type', (c) => c.ws.send('{"type":"rewind"}'), 4400],
      ['extra field', (c) => c.ws.send('{"type":"start","admin":true}'), 4400],
      [
        'odd byte length',
        (c) => (c.ws.send('{"type":"start","participant":"odd"}'), c.ws.send(Buffer.alloc(321))),
        4400,
      ],
      [
        'oversize frame',
        (c) => (c.ws.send('{"type":"start","participant":"big"}'), c.ws.send(Buffer.alloc(20_000))),
        4413,
      ],
      ['far oversize frame', (c) => c.ws.send(Buffer.alloc(40_000)), 1009],
      [
        'bad participant',
        (c) => c.ws.send(JSON.stringify({ type: 'start', participant: 'x'.repeat(61) })),
        4400,
      ],
    ];
    for (const [name, send, code] of cases) {
      const c = await mustOpen(server, path, { token: member.accessToken });
      send(c);
      expect((await c.closed).code, name).toBe(code);
    }
    // A viewer sends nothing: if it does, only its socket closes.
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: member.accessToken });
    viewer.ws.send('hello');
    expect((await viewer.closed).code).toBe(4400);
    const good = await mustOpen(server, path, { token: member.accessToken });
    await streamPcm(good, new Int16Array(3200));
    expect(good.messages.at(-1)).toEqual({ type: 'ack', seq: 1 });
    good.ws.close();
  });

  it('sequence numbers: resent frames are skipped, a gap is refused (4422), a participant streams once', async () => {
    const id = await createLive(t, member.accessToken, ip);
    const path = `/api/v1/recordings/${id}/live`;
    const a = await mustOpen(server, path, { token: member.accessToken });
    a.ws.send(JSON.stringify({ type: 'start', participant: 'Ann', seq: 0 }));
    for (const f of frames(new Int16Array(4800))) a.ws.send(f);
    await a.waitFor((m) => m.type === 'ack' && m.seq === 2);
    const twin = await mustOpen(server, path, { token: member.accessToken });
    twin.ws.send(JSON.stringify({ type: 'start', participant: 'Ann' }));
    expect((await twin.closed).code).toBe(4409);
    a.ws.close();
    await a.closed;
    // Resume from seq 1: frames 1 and 2 are duplicates, 3 is new.
    const b = await mustOpen(server, path, { token: member.accessToken });
    b.ws.send(JSON.stringify({ type: 'start', participant: 'Ann', seq: 1 }));
    await b.waitFor((m) => m.type === 'ack');
    expect(b.messages[0]).toEqual({ type: 'ack', seq: 2 });
    for (const f of frames(new Int16Array(4800))) b.ws.send(f);
    await b.waitFor((m) => m.type === 'ack' && m.seq === 3);
    expect(b.messages.map((m) => m.seq)).toEqual([2, 2, 2, 3]);
    b.ws.close();
    await b.closed;
    const gap = await mustOpen(server, path, { token: member.accessToken });
    gap.ws.send(JSON.stringify({ type: 'start', participant: 'Ann', seq: 7 }));
    const closed = await gap.closed;
    expect(closed).toEqual({ code: 4422, reason: 'sequence gap: expected 4' });
  });

  it('caps concurrent live recordings per org (429)', async () => {
    const org = await createOrgWithUser(t.services, { role: 'owner' });
    for (let i = 0; i < 20; i++) await createLive(t, org.accessToken, ip);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/recordings',
      headers: bearer(org.accessToken),
      payload: { mode: 'live' },
      remoteAddress: ip,
    });
    expect(res.statusCode).toBe(429);
  });

  it('closes the open sockets of a revoked device (4401) and of a demoted admin (4404)', async () => {
    const id = await createLive(t, member.accessToken, ip);
    const device = await addUser(t.services, owner.orgId, { role: 'member' });
    const own = await createLive(t, device.accessToken, ip);
    const ingest = await mustOpen(server, `/api/v1/recordings/${own}/live`, { token: device.accessToken });
    ingest.ws.send(JSON.stringify({ type: 'start' }));
    await ingest.waitFor((m) => m.type === 'ack');
    const admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: admin.accessToken });
    await viewer.waitFor((m) => m.type === 'ready');

    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/devices/${device.sessionId}`,
      headers: bearer(device.accessToken),
      remoteAddress: ip,
    });
    expect(revoke.statusCode).toBe(204);
    expect(await ingest.closed).toEqual({ code: 4401, reason: 'session ended' });

    const demote = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/org/members/${admin.userId}`,
      headers: bearer(owner.accessToken),
      payload: { role: 'member' },
      remoteAddress: ip,
    });
    expect(demote.statusCode).toBe(200);
    expect(await viewer.closed).toEqual({ code: 4404, reason: 'access revoked' });
  });

  it.skipIf(!hasCorpus)(
    `streams a corpus file: final segments at a viewer, then the same transcript as an upload ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const ref = corpusEntry('call-02');
      const { sampleRate, pcm } = readCorpusMono('call-02');
      expect(sampleRate).toBe(16_000);
      const id = await createLive(t, member.accessToken, ip, 'Support call');
      const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await viewer.waitFor((m) => m.type === 'ready');
      const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: member.accessToken });
      await streamPcm(bot, pcm);
      // Segments arrive while streaming continues; at least one before the stop.
      await viewer.waitFor((m) => m.type === 'segment');
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      expect(await bot.waitFor((m) => m.type === 'stopped')).toEqual({ type: 'stopped', status: 'queued' });
      expect((await bot.closed).code).toBe(1000);
      expect((await viewer.closed).code).toBe(1000);
      expect(viewer.messages.at(-1)).toEqual({ type: 'stopped', status: 'queued' });

      const segs = segmentsOf(viewer);
      expect(segs.length).toBeGreaterThanOrEqual(3);
      expect(segs.map((s) => s.seq)).toEqual(segs.map((_, i) => i + 1));
      for (const s of segs) {
        expect(s.speaker).toBe('Speaker 1');
        expect(s.end).toBeGreaterThan(s.start);
        expect(s.start).toBeGreaterThanOrEqual(0);
        expect(s.end).toBeLessThanOrEqual(ref.duration + 0.5);
        expect(s.text).toBe(s.words.map((w) => w.w).join(' '));
      }
      for (let i = 1; i < segs.length; i++) expect(segs[i]!.start).toBeGreaterThanOrEqual(segs[i - 1]!.start);
      const liveWer = wordErrorRate(ref.text, segs.map((s) => s.text).join(' ')).wer;
      console.log(`live WER on call-02: ${(100 * liveWer).toFixed(1)}% over ${segs.length} segments`);
      expect(liveWer).toBeLessThan(0.5);

      // Queued like an upload; the worker then produces the stored transcript.
      expect((await get(member, `/api/v1/recordings/${id}`)).json()).toMatchObject({ status: 'queued' });
      expect(await openWs(server, `/api/v1/recordings/${id}/live`, { token: member.accessToken })).toBe(409);
      const uploaded = await upload(t, member.accessToken, ip, readFileSync(corpusFile('call-02', 'wav')));
      expect(uploaded.statusCode).toBe(202);
      await t.services.jobs.start();
      const done = await pollRecording(
        t,
        member.accessToken,
        ip,
        id,
        (b) => b.status === 'done' || b.status === 'failed',
      );
      expect(done).toMatchObject({ status: 'done', channels: 1, title: 'Support call' });
      expect(done.durationSeconds as number).toBeCloseTo(ref.duration, 1);
      await pollRecording(t, member.accessToken, ip, uploaded.json().id, (b) => b.status === 'done');
      const strip = (b: { segments: { speaker: string; start: number; end: number; text: string }[] }) =>
        b.segments.map(({ speaker, start, end, text }) => ({ speaker, start, end, text }));
      const liveT = (await get(member, `/api/v1/recordings/${id}/transcript`)).json();
      const upT = (await get(member, `/api/v1/recordings/${uploaded.json().id}/transcript`)).json();
      expect(strip(liveT).length).toBeGreaterThan(0);
      expect(strip(liveT)).toEqual(strip(upT));

      // No transcript text reached the logs (live segments included).
      const logs = t.logs.join('\n');
      for (const s of segs.filter((x) => x.text.length > 12)) expect(logs).not.toContain(s.text);
      expect(logs).not.toContain('Support call');
    },
    240_000,
  );

  it.skipIf(!hasCorpus)(
    `two participants on separate streams are labelled by their streams ${hasCorpus ? '' : noCorpusReason}`,
    async () => {
      const ref = corpusEntry('call-02');
      const { channels } = readCorpusStereo('call-02');
      const [left, right] = channels as [Int16Array, Int16Array];
      const labels: Record<string, string> = { [ref.speakers[0]!]: 'Agent', [ref.speakers[1]!]: 'Caller' };
      const id = await createLive(t, member.accessToken, ip);
      const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
      await viewer.waitFor((m) => m.type === 'ready');
      const a = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: member.accessToken });
      const b = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: member.accessToken });
      await Promise.all([streamPcm(a, left, 'Agent'), streamPcm(b, right, 'Caller')]);
      a.ws.send(JSON.stringify({ type: 'stop' }));
      await viewer.closed;
      const segs = segmentsOf(viewer);
      expect(new Set(segs.map((s) => s.speaker))).toEqual(new Set(['Agent', 'Caller']));
      // Each segment's label is the reference speaker of the turn it falls in.
      let agree = 0;
      for (const s of segs) {
        const mid = (s.start + s.end) / 2;
        const turn = ref.turns.find((x) => mid >= x.start - 0.5 && mid <= x.end + 0.5);
        if (turn && labels[turn.speaker] === s.speaker) agree++;
      }
      expect(agree / segs.length).toBeGreaterThanOrEqual(0.8);
      expect(await b.closed).toMatchObject({ code: 1000 });
      // The stored audio has one channel per participant stream: the job labels speakers by channel.
      await t.services.jobs.start();
      const done = await pollRecording(
        t,
        member.accessToken,
        ip,
        id,
        (r) => r.status === 'done' || r.status === 'failed',
      );
      expect(done).toMatchObject({ status: 'done', channels: 2 });
      const stored = (await get(member, `/api/v1/recordings/${id}/transcript`)).json() as {
        speakers: unknown[];
      };
      expect(stored.speakers).toHaveLength(2);
    },
    120_000,
  );
});

describe(`live recordings stop by themselves (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let user: TestUser;
  const ip = freshIp();
  // The idle timeout is read on the app's clock: the tests move it past the (default, 30 s)
  // timeout instead of waiting, and the server's once-a-second tick does the rest.
  const clock = new ManualClock();
  const IDLE_MS = 30_000;

  beforeAll(async () => {
    const { env } = recordingEnv({
      SOTTO_LIVE_IDLE_SECONDS: String(IDLE_MS / 1000),
      SOTTO_LIVE_MAX_MINUTES: '1',
    });
    t = await startTestApp({ env, clock });
    server = await listenTls(t.services);
    user = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const status = async (id: string) =>
    (
      await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings/${id}`,
        headers: bearer(user.accessToken),
        remoteAddress: ip,
      })
    ).json() as { status: string; error: string | null };

  it('after the idle timeout: audio sealed and queued, the socket closed with 1000 "idle"', async () => {
    const id = await createLive(t, user.accessToken, ip);
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
    await streamPcm(bot, new Int16Array(16_000));
    // Not idle yet: a tick or two of real time passes and the session stays open.
    clock.advance(IDLE_MS - 1000);
    await new Promise((r) => setTimeout(r, 1200));
    expect(bot.messages.some((m) => m.type === 'stopped')).toBe(false);
    clock.advance(2000);
    expect(await bot.closed).toEqual({ code: 1000, reason: 'idle' });
    expect(bot.messages.at(-1)).toEqual({ type: 'stopped', status: 'queued' });
    expect(await status(id)).toMatchObject({ status: 'queued' });
    const sealed = await withTenant(t.db, { orgId: user.orgId, userId: null }, (tx) =>
      tx.query('SELECT content_type FROM recording_audio WHERE recording_id = $1', [id]),
    );
    expect(sealed.rows).toEqual([{ content_type: 'audio/wav' }]);
    expect(stagedFiles(t.services.config.dataDir)).toEqual([]);
  });

  it('a session that never received audio ends failed', async () => {
    const id = await createLive(t, user.accessToken, ip);
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
    bot.ws.send(JSON.stringify({ type: 'start' }));
    // The session exists once the start is acknowledged; then it idles.
    await bot.waitFor((m) => m.type === 'ack');
    clock.advance(IDLE_MS + 1000);
    expect((await bot.closed).code).toBe(1000);
    expect(await status(id)).toMatchObject({ status: 'failed' });
  });

  it('a stream reaching the maximum duration is closed (4413) and the recording stops', async () => {
    const id = await createLive(t, user.accessToken, ip);
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
    bot.ws.send(JSON.stringify({ type: 'start' }));
    for (const f of frames(new Int16Array(61 * 16_000), 8000)) bot.ws.send(f);
    expect(await bot.closed).toEqual({ code: 4413, reason: 'maximum recording duration reached' });
    await eventually(async () => ((await status(id)).status === 'queued' ? true : undefined), 10_000);
  });

  it('pings quiet sockets every 20 s, the viewer and the capture client, so a proxy keeps them open', async () => {
    const id = await createLive(t, user.accessToken, ip);
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: user.accessToken });
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: user.accessToken });
    const pings = { bot: 0, viewer: 0 };
    bot.ws.on('ping', () => pings.bot++);
    viewer.ws.on('ping', () => pings.viewer++);
    try {
      // Below the keepalive period nothing is sent: a tick or two of real time passes.
      clock.advance(KEEPALIVE_MS - 2000);
      await new Promise((r) => setTimeout(r, 1200));
      expect(pings).toEqual({ bot: 0, viewer: 0 });
      clock.advance(3000);
      await eventually(async () => (pings.bot > 0 && pings.viewer > 0 ? true : undefined), 5000);
      expect(pings).toEqual({ bot: 1, viewer: 1 });
      // Answered by the clients' WebSockets themselves; both sockets stay open.
      expect([bot.ws.readyState, viewer.ws.readyState]).toEqual([WebSocket.OPEN, WebSocket.OPEN]);
    } finally {
      bot.ws.close();
      viewer.ws.close();
    }
  });
});
