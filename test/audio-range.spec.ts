import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTransport, type Transport } from '../src/http/listen.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { ensureSelfSignedCert, type SelfSignedResult } from '../src/adapters/network/tls.adapter.js';
import { auditRows, freshIp } from './helpers/auth-client.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  type SupportUser,
  type TestUser,
} from './helpers/fixtures.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';
import { wavFile } from './helpers/wav-file.js';

/**
 * Audio playback tickets (docs/audio-storage.md): the panel's <audio> streams kept audio with HTTP
 * ranges from a URL carrying a short-lived ticket, never the bearer token. Real HTTPS listener,
 * real sealed blobs (chunked AES-256-GCM) and the real database; the ticket's reach is exactly
 * the bearer route's (one recording, one user's live session, five minutes) and it never
 * reaches a log line.
 */

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe(`audio playback tickets and ranges (${backendLabel})`, () => {
  let t: TestApp;
  let tlsDir: string;
  let cert: SelfSignedResult;
  let transport: Transport;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  let support: SupportUser;
  let kept: string;
  let otherKept: string;
  let noAudio: string;
  const clock = new ManualClock();
  const ip = freshIp();
  const audio = wavFile(12); // 384 044 bytes: six 64 KiB chunks

  const httpsGet = (urlPath: string, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: transport.address.port,
          path: urlPath,
          method: 'GET',
          headers: { host: 'sotto.test', ...headers },
          ca: cert.cert,
          servername: 'sotto.test',
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });

  const ticketFor = async (u: TestUser | SupportUser, id: string, org?: string) =>
    t.app.inject({
      method: 'POST',
      url: `/api/v1/recordings/${id}/audio-ticket`,
      headers: bearer(u.accessToken, org),
      remoteAddress: ip,
    });
  const urlFor = async (u: TestUser | SupportUser, id: string, org?: string): Promise<string> => {
    const res = await ticketFor(u, id, org);
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<{ url: string; expiresIn: number }>();
    expect(body.expiresIn).toBeLessThanOrEqual(300);
    return body.url;
  };
  const keep = async (u: TestUser, bytes: Buffer): Promise<string> => {
    const id = await seedTranscript(t.services, u, { segments: [seg(1, 'S1', 0, 'hello there')] });
    const file = path.join(tlsDir, `${id}.wav`);
    writeFileSync(file, bytes);
    await t.services.audio.seal(u.orgId, id, file, 'audio/wav'); // removes the plain file
    return id;
  };

  beforeAll(async () => {
    const r = recordingEnv({
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      SOTTO_HOST: '127.0.0.1',
      SOTTO_HTTPS_PORT: '0',
      SOTTO_HTTP_PORT: '0',
    });
    t = await startTestApp({ env: r.env, clock });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    support = await createSupportUserFixture(t.services);
    tlsDir = mkdtempSync(path.join(tmpdir(), 'sotto-audio-range-'));
    cert = await ensureSelfSignedCert(path.join(tlsDir, 'tls'), ['sotto.test']);
    transport = await startTransport({ services: t.services, tls: cert });
    kept = await keep(member, audio);
    otherKept = await keep(other, wavFile(2));
    noAudio = await seedTranscript(t.services, member, { segments: [seg(1, 'S1', 0, 'no audio')] });
  });
  afterAll(async () => {
    await transport?.close();
    await t?.close();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  it('streams byte-exact ranges with the right headers, no Authorization needed', async () => {
    const url = await urlFor(member, kept);
    expect(url).toMatch(new RegExp(`^/api/v1/recordings/${kept}/audio/stream\\?ticket=[A-Za-z0-9_-]{43}$`));
    const size = audio.length;
    const full = await httpsGet(url);
    expect(full.status).toBe(200);
    expect(full.body.equals(audio)).toBe(true);
    expect(full.headers['content-type']).toBe('audio/wav');
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.headers['cache-control']).toBe('private, no-store');
    const cases: [string, number, number][] = [
      ['bytes=0-1023', 0, 1023], // first bytes
      ['bytes=100000-200000', 100_000, 200_000], // middle, across chunk boundaries
      ['bytes=-4096', size - 4096, size - 1], // suffix
      ['bytes=300000-', 300_000, size - 1], // open-ended
    ];
    for (const [range, start, end] of cases) {
      const res = await httpsGet(url, { range });
      expect(res.status, range).toBe(206);
      expect(res.headers['content-range'], range).toBe(`bytes ${start}-${end}/${size}`);
      expect(res.headers['content-length'], range).toBe(String(end - start + 1));
      expect(res.headers['content-type']).toBe('audio/wav');
      expect(res.headers['cache-control']).toBe('private, no-store');
      expect(res.body.equals(audio.subarray(start, end + 1)), range).toBe(true);
    }
    for (const range of [`bytes=${size}-`, 'bytes=-0', `bytes=${size + 5}-${size + 10}`]) {
      const res = await httpsGet(url, { range });
      expect(res.status, range).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${size}`);
      expect(JSON.parse(res.body.toString()).code).toBe('range_not_satisfiable');
    }
    // Several ranges: the whole file (RFC 9110 lets a server ignore Range).
    const multi = await httpsGet(url, { range: 'bytes=0-1,10-20' });
    expect(multi.status).toBe(200);
    expect(multi.body.equals(audio)).toBe(true);
    // The same ticket serves every request of a player (metadata, then one per seek).
    expect((await httpsGet(url, { range: 'bytes=0-0' })).status).toBe(206);
  });

  it('issues tickets only to who may play the audio: colleague, other org, no audio, anonymous are refused', async () => {
    expect((await ticketFor(owner, kept)).statusCode).toBe(201);
    for (const u of [colleague, other]) {
      const res = await ticketFor(u, kept);
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    expect((await ticketFor(member, noAudio)).statusCode).toBe(404);
    const anonymous = await t.app.inject({
      method: 'POST',
      url: `/api/v1/recordings/${kept}/audio-ticket`,
      remoteAddress: ip,
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('a forged ticket, one for another recording or another org, or a bearer token instead: exactly 404', async () => {
    const url = await urlFor(member, kept);
    const ticket = new URL(url, 'https://x').searchParams.get('ticket')!;
    const forged = `${ticket.slice(0, -1)}${ticket.endsWith('A') ? 'B' : 'A'}`;
    const otherUrl = await urlFor(other, otherKept);
    const otherTicket = new URL(otherUrl, 'https://x').searchParams.get('ticket')!;
    const stream = (id: string, tk: string) => `/api/v1/recordings/${id}/audio/stream?ticket=${tk}`;
    for (const [what, target] of [
      ['forged', stream(kept, forged)],
      ['ticket of another recording', stream(otherKept, ticket)],
      ['other org ticket on this org recording', stream(kept, otherTicket)],
      ['unknown recording', stream('00000000-0000-4000-8000-000000000000', ticket)],
    ] as const) {
      const res = await httpsGet(target, { range: 'bytes=0-9' });
      expect(res.status, what).toBe(404);
      expect(JSON.parse(res.body.toString()).code, what).toBe('not_found');
    }
    // A bearer header does not replace the ticket on this route.
    const bearerOnly = await httpsGet(`/api/v1/recordings/${kept}/audio/stream`, bearer(member.accessToken));
    expect(bearerOnly.status).toBe(400);
    // The id in upper case is the same recording.
    expect((await httpsGet(stream(kept.toUpperCase(), ticket), { range: 'bytes=0-0' })).status).toBe(206);
  });

  it('hostile ticket and range values are refused without a 500', async () => {
    const url = await urlFor(member, kept);
    for (const q of [
      '',
      'ticket=',
      'ticket=short',
      `ticket=${'x'.repeat(5000)}`,
      'ticket=a&ticket=b',
      'ticket=%00%00',
    ]) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings/${kept}/audio/stream?${q}`,
        remoteAddress: ip,
      });
      expect(res.statusCode, q).toBe(400);
    }
    const badId = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/not-a-uuid/audio/stream?${url.split('?')[1]}`,
      remoteAddress: ip,
    });
    expect(badId.statusCode).toBe(400);
    for (const range of ['bytes=5-1', 'bytes=abc', 'x'.repeat(300), `bytes=${'9'.repeat(100)}-`]) {
      const res = await t.app.inject({ method: 'GET', url, headers: { range }, remoteAddress: ip });
      expect([200, 400, 416], range).toContain(res.statusCode);
    }
  });

  it('support through a grant: only while the grant is active', async () => {
    expect((await ticketFor(support, kept, owner.orgId)).statusCode).toBe(404);
    const grant = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
      remoteAddress: ip,
    });
    expect(grant.statusCode, grant.body).toBe(201);
    const url = await urlFor(support, kept, owner.orgId);
    const streamed = async () =>
      (await auditRows(t, 'support.access')).filter(
        (r) =>
          JSON.stringify(r.details).includes('/audio/stream') && JSON.stringify(r.details).includes(kept),
      ).length;
    expect(await streamed()).toBe(0);
    expect((await httpsGet(url, { range: 'bytes=0-3' })).status).toBe(206);
    // Listening through the ticket is in the audit log, once per ticket, not once per seek.
    expect(await streamed()).toBe(1);
    expect((await httpsGet(url, { range: 'bytes=4-7' })).status).toBe(206);
    expect(await streamed()).toBe(1);
    const ended = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/org/support-grants/${grant.json<{ id: string }>().id}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(ended.statusCode, ended.body).toBe(204);
    expect((await httpsGet(url, { range: 'bytes=0-3' })).status).toBe(404);
  });

  it('expires after five minutes, and logout ends it at once', async () => {
    const url = await urlFor(member, kept);
    expect((await httpsGet(url, { range: 'bytes=0-0' })).status).toBe(206);
    clock.advance(299_000);
    expect((await httpsGet(url, { range: 'bytes=0-0' })).status).toBe(206);
    clock.advance(2_000);
    expect((await httpsGet(url, { range: 'bytes=0-0' })).status).toBe(404);

    const user = await addUser(t.services, owner.orgId, { role: 'admin' });
    const fresh = await urlFor(user, kept);
    expect((await httpsGet(fresh, { range: 'bytes=0-0' })).status).toBe(206);
    const out = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(user.accessToken),
      payload: {},
      remoteAddress: ip,
    });
    expect(out.statusCode, out.body).toBe(204);
    expect((await httpsGet(fresh, { range: 'bytes=0-0' })).status).toBe(404);
  });

  it('never writes a ticket into a log line', async () => {
    const url = await urlFor(member, kept);
    const ticket = new URL(url, 'https://x').searchParams.get('ticket')!;
    const before = t.logs.length;
    await httpsGet(url, { range: 'bytes=0-9' });
    await httpsGet(`/api/v1/recordings/${otherKept}/audio/stream?ticket=${ticket}`);
    await httpsGet(url, { range: 'bytes=999999999-' });
    const lines = t.logs.slice(before).join('\n');
    // The request lines were logged (by path), the ticket never.
    expect(lines).toContain(`/api/v1/recordings/${kept}/audio/stream`);
    expect(t.logs.join('\n')).not.toContain(ticket);
  });
});
