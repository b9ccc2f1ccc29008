import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { sessionRepository } from '../src/repositories/auth/session.repository.js';
import type { LiveEvent } from '../src/services/live/live-viewers.js';
import { freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import {
  busOf,
  createLive,
  sealLiveEvent,
  listenTls,
  mustOpen,
  openWs,
  type Conn,
  type Listening,
} from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * What lets one node hold thousands of viewers of a recording (docs/live.md, "Fan-out";
 * bench/fanout.ts measures it): the periodic re-check of open sockets runs as one batch per node
 * (every viewer's session in one query, not one transaction per socket) with verdicts still per
 * socket — a revoked session closes its own sockets (4401), a demoted admin's (4404), nobody
 * else's, and a batch that cannot be asked (database down) closes nothing; an event is
 * serialised once for all viewers, not once per socket; no per-socket compressor; an open socket
 * does not keep the HTTP request of its handshake.
 */

/** A full garbage collection on demand (the test process was not started with --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
describe(`live fan-out costs (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;
  let other: TestUser;
  const ip = freshIp();

  beforeAll(async () => {
    const { env } = recordingEnv({
      SOTTO_LIVE_RECHECK_SECONDS: '1',
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
    });
    t = await startTestApp({ env });
    server = await listenTls(t.services);
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await server?.close();
    await t?.close();
  });

  const watch = async (id: string, token: string): Promise<Conn> => {
    const c = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token });
    await c.waitFor((m) => m.type === 'ready');
    return c;
  };

  it('checks every viewer session in one query; closes only the revoked (4401) and the demoted (4404)', async () => {
    const id = await createLive(t, owner.accessToken, ip, 'Batch');
    // Another org's viewer is refused before the upgrade, as ever: exactly 404.
    expect(await openWs(server, `/api/v1/recordings/${id}/watch`, { token: other.accessToken })).toBe(404);
    const admins = await Promise.all(
      Array.from({ length: 12 }, () => addUser(t.services, owner.orgId, { role: 'admin' })),
    );
    const viewers = await Promise.all(admins.map((a) => watch(id, a.accessToken)));
    // Two tabs of one session: one verdict, both sockets.
    const tab = await watch(id, admins[2]!.accessToken);

    const batch = vi.spyOn(sessionRepository, 'findLiveMany');
    const sessions = new Set(admins.map((a) => a.sessionId));
    const covering = () =>
      batch.mock.calls.filter(([, ids]) => [...sessions].every((s) => ids.includes(s))).length;
    await eventually(async () => (covering() >= 1 ? true : undefined), 10_000);

    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/devices/${admins[0]!.sessionId}`,
      headers: bearer(admins[0]!.accessToken),
      remoteAddress: ip,
    });
    expect(revoke.statusCode).toBe(204);
    const demote = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/org/members/${admins[1]!.userId}`,
      headers: bearer(owner.accessToken),
      payload: { role: 'member' },
      remoteAddress: ip,
    });
    expect(demote.statusCode).toBe(200);
    expect(await viewers[0]!.closed).toEqual({ code: 4401, reason: 'session ended' });
    expect(await viewers[1]!.closed).toEqual({ code: 4404, reason: 'access revoked' });

    // Two more re-checks later every other socket, the second tab included, is still open.
    sessions.delete(admins[0]!.sessionId);
    sessions.delete(admins[1]!.sessionId);
    const seen = covering();
    await eventually(async () => (covering() >= seen + 2 ? true : undefined), 10_000);
    for (const v of [...viewers.slice(2), tab]) expect(v.ws.readyState).toBe(WebSocket.OPEN);
    for (const v of [...viewers.slice(2), tab]) v.ws.close();
    batch.mockRestore();
  });

  it('a batch that cannot be asked (the database down) closes nothing and is logged once', async () => {
    const id = await createLive(t, owner.accessToken, ip, 'Outage');
    const admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    const viewer = await watch(id, admin.accessToken);
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const batch = vi.spyOn(sessionRepository, 'findLiveMany').mockRejectedValue(down);
    await eventually(async () => (batch.mock.calls.length >= 3 ? true : undefined), 10_000);
    // Revoked meanwhile: only an answer revokes, so the socket stays until the database answers.
    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/devices/${admin.sessionId}`,
      headers: bearer(admin.accessToken),
      remoteAddress: ip,
    });
    expect(revoke.statusCode).toBe(204);
    const calls = batch.mock.calls.length;
    await eventually(async () => (batch.mock.calls.length >= calls + 2 ? true : undefined), 10_000);
    expect(viewer.ws.readyState).toBe(WebSocket.OPEN);
    const warned = t.logs.filter((l) => l.includes('live sockets cannot be re-checked'));
    expect(warned).toHaveLength(1);
    batch.mockRestore();
    expect(await viewer.closed).toEqual({ code: 4401, reason: 'session ended' });
  });

  it('serialises an event once for all viewers, and offers no permessage-deflate', async () => {
    const id = await createLive(t, owner.accessToken, ip, 'Once');
    const viewers = await Promise.all(Array.from({ length: 6 }, () => watch(id, owner.accessToken)));
    // The `ws` client offers permessage-deflate, as browsers do: the server declines it.
    for (const v of viewers) expect(v.ws.extensions).toBe('');
    const event: LiveEvent = {
      type: 'segment',
      id: 'u-1',
      seq: 1,
      speaker: 'Desk',
      start: 0,
      end: 1,
      text: 'once for everyone',
      words: [],
    };
    const payload = await sealLiveEvent(t, owner.orgId, id, event);
    const bus = busOf(t.services);
    const stringify = vi.spyOn(JSON, 'stringify');
    let calls: unknown[][] = [];
    try {
      await bus.publish(id, payload, { kind: 'final', ttlMs: 60_000 });
      await Promise.all(viewers.map((v) => v.waitFor((m) => m.type === 'segment')));
      calls = [...stringify.mock.calls];
    } finally {
      stringify.mockRestore(); // which also forgets the calls: copied above
    }
    const ofEvent = calls.filter(
      ([value]) => (value as { text?: unknown } | null)?.text === 'once for everyone',
    );
    // Once for the six sockets (per-socket JSON would be six).
    expect(ofEvent).toHaveLength(1);
    for (const v of viewers) expect(v.messages.find((m) => m.type === 'segment')).toEqual(event);
    for (const v of viewers) v.ws.close();
  });

  it('keeps no HTTP request per open socket: the handshake request is collected, the socket works', async () => {
    const gc = collector();
    const requests: WeakRef<IncomingMessage>[] = [];
    const onConnection = (_ws: unknown, req: IncomingMessage) => requests.push(new WeakRef(req));
    server.app!.websocketServer.on('connection', onConnection);
    const id = await createLive(t, owner.accessToken, ip, 'Light');
    const capture = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
    const viewers = await Promise.all(Array.from({ length: 3 }, () => watch(id, owner.accessToken)));
    server.app!.websocketServer.off('connection', onConnection);
    expect(requests).toHaveLength(4);
    // Each request (its headers, Fastify's request and reply, a child logger: ≈ 5 KiB) would
    // otherwise stay reachable from its socket for as long as the socket is open.
    await eventually(async () => {
      gc();
      await new Promise((r) => setImmediate(r));
      return requests.every((r) => r.deref() === undefined) ? true : undefined;
    }, 10_000);
    // Both kinds of socket still work: the capture is acknowledged, the viewers get its events.
    capture.ws.send(JSON.stringify({ type: 'start', participant: 'Desk' }));
    await capture.waitFor((m) => m.type === 'ack');
    capture.ws.send(JSON.stringify({ type: 'stop' }));
    await Promise.all(viewers.map((v) => v.waitFor((m) => m.type === 'stopped', 30_000)));
    await capture.closed;
  });
});
