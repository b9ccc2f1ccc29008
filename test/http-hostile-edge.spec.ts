import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { LIVE_PROTOCOL } from '../src/http/routes/recordings/live.schema.js';
import { buildServer } from '../src/http/server.js';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { createLive, listenTls, mustOpen, openWs, type Listening } from './helpers/live.js';
import { firstAnswer, hasAnswer, rawTls, sleep, type RawConn } from './helpers/raw-client.js';
import { recordingEnv, stagedFiles } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * Hostile requests at the HTTPS edge on real sockets (issue 15, items 2, 6 and 8): malformed
 * multipart bodies are 4xx problem documents, never 500; websocket upgrades are refused as HTTP
 * before the handshake wherever no websocket route is; the Authorization scheme is
 * case-insensitive; bidirectional and control characters never reach a Content-Disposition.
 */
describe(`hostile requests at the HTTPS edge (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;
  let dataDir: string;
  const open: RawConn[] = [];

  beforeAll(async () => {
    const r = recordingEnv({ SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
    dataDir = r.dataDir;
    t = await startTestApp({ env: r.env });
    server = await listenTls(t.services);
    owner = await createOrgWithUser(t.services);
  });
  afterAll(async () => {
    for (const c of open) c.destroy();
    await server?.close();
    await t?.close();
  });

  /** Sends `bytes` on a fresh TLS connection; the first answer, or null if it closed without one. */
  const send = async (bytes: Buffer | string, port = server.port) => {
    const c = await rawTls(port);
    open.push(c);
    c.write(bytes);
    try {
      return { conn: c, answer: firstAnswer(await c.until(hasAnswer, 5000)) };
    } catch {
      return { conn: c, answer: null };
    }
  };

  describe('malformed multipart is a 4xx problem, never a 500 (item 2)', () => {
    const post = (contentType: string, body: Buffer) =>
      send(
        Buffer.concat([
          Buffer.from(
            `POST /api/v1/recordings HTTP/1.1\r\nHost: sotto.test\r\nAuthorization: Bearer ${owner.accessToken}\r\n` +
              `Content-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
          ),
          body,
        ]),
      );
    const filePart = (boundary: string, data: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
        ),
        data,
      ]);
    const wav = encodeWav(new Int16Array(16_000 * 3).fill(1200), 16_000);

    const cases: [string, string, Buffer][] = [
      ['no boundary parameter', 'multipart/form-data', filePart('XX', wav.subarray(0, 5000))],
      ['an empty boundary', 'multipart/form-data; boundary=', filePart('', wav.subarray(0, 5000))],
      [
        'a 5,000-character boundary',
        `multipart/form-data; boundary=${'b'.repeat(5000)}`,
        Buffer.concat([
          filePart('b'.repeat(5000), wav.subarray(0, 5000)),
          Buffer.from(`\r\n--${'b'.repeat(5000)}--\r\n`),
        ]),
      ],
      [
        'a body cut after 40 KB of file data',
        'multipart/form-data; boundary=XX',
        filePart('XX', wav.subarray(0, 45_000)),
      ],
      [
        'a body cut after 4 KB of file data',
        'multipart/form-data; boundary=XX',
        filePart('XX', wav.subarray(0, 4_000)),
      ],
      [
        'a body cut inside the part headers',
        'multipart/form-data; boundary=XX',
        Buffer.from('--XX\r\nContent-Disposition: form-data; name="au'),
      ],
      ['garbage instead of parts', 'multipart/form-data; boundary=XX', Buffer.from('x'.repeat(50_000))],
    ];
    for (const [name, contentType, body] of cases) {
      it(`${name} → 4xx problem+json, nothing staged`, async () => {
        const { answer } = await post(contentType, body);
        expect(answer, 'an answer').not.toBeNull();
        expect(answer!.status, answer!.body).toBeGreaterThanOrEqual(400);
        expect(answer!.status, answer!.body).toBeLessThan(500);
        expect(answer!.headers['content-type']).toContain('application/problem+json');
        expect(stagedFiles(dataDir)).toEqual([]);
      });
    }
  });

  describe('websocket upgrades only where a websocket route is (item 6)', () => {
    const upgrade = (urlPath: string, auth = '', port = server.port) =>
      send(
        `GET ${urlPath} HTTP/1.1\r\nHost: sotto.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${auth}\r\n`,
        port,
      );

    for (const urlPath of ['/healthz', '/foo', '/api/v1/recordings', '/api/v1/me', '/api/docs']) {
      it(`${urlPath}: 404 before any 101, and the socket is closed`, async () => {
        const { conn, answer } = await upgrade(urlPath);
        expect(answer?.status, conn.received().slice(0, 200)).toBe(404);
        expect(conn.received()).not.toContain(' 101 ');
        expect(await Promise.race([conn.closed.then(() => 'closed'), sleep(3000).then(() => 'open')])).toBe(
          'closed',
        );
      });
    }

    it('with credentials too: a bearer token does not open a socket on a plain route', async () => {
      const { conn, answer } = await upgrade('/api/v1/me', `Authorization: Bearer ${owner.accessToken}\r\n`);
      expect(answer?.status).toBe(404);
      expect(conn.received()).not.toContain(' 101 ');
    });

    it('the live websocket routes still upgrade, and still refuse without credentials (401)', async () => {
      const id = await createLive(t, owner.accessToken, freshIp());
      expect(await openWs(server, `/api/v1/recordings/${id}/watch`)).toBe(401);
      const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, {
        token: owner.accessToken,
        protocols: [LIVE_PROTOCOL],
      });
      await viewer.waitFor((m) => m.type === 'ready', 10_000);
      viewer.ws.close();
      const ingest = await mustOpen(server, `/api/v1/recordings/${id}/live`, {
        token: owner.accessToken,
        protocols: [LIVE_PROTOCOL],
      });
      ingest.ws.close();
    });

    // Last here: closing this second server also closes the shared services' live sessions.
    it("any path under the built web panel's catch-all GET: 404 too", async () => {
      const webRoot = mkdtempSync(path.join(tmpdir(), 'sotto-panel-'));
      mkdirSync(path.join(webRoot, 'assets'));
      writeFileSync(path.join(webRoot, 'index.html'), '<!doctype html><title>Sotto</title>');
      const cert = await ensureSelfSignedCert(path.join(webRoot, 'tls'), ['sotto.test']);
      const panel = await buildServer({ services: t.services, https: cert, webRoot });
      try {
        await panel.listen({ host: '127.0.0.1', port: 0 });
        const port = (panel.server.address() as AddressInfo).port;
        for (const urlPath of ['/foo', '/recordings/x', '/']) {
          const { conn, answer } = await upgrade(urlPath, '', port);
          expect(answer?.status, `${urlPath}: ${conn.received().slice(0, 100)}`).toBe(404);
          expect(conn.received()).not.toContain(' 101 ');
        }
      } finally {
        await panel.close();
        rmSync(webRoot, { recursive: true, force: true });
      }
    });
  });

  describe('Authorization and Content-Disposition (item 8)', () => {
    const get = (path: string, headers: Record<string, string>) =>
      new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>(
        (resolve, reject) => {
          const req = httpsRequest(
            {
              host: '127.0.0.1',
              port: server.port,
              path,
              headers,
              ca: server.ca,
              servername: 'localhost',
              agent: false,
            },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (body += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
            },
          );
          req.on('error', reject);
          req.end();
        },
      );

    it('the bearer scheme is case-insensitive (RFC 9110)', async () => {
      for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR'])
        expect(
          (await get('/api/v1/me', { authorization: `${scheme} ${owner.accessToken}` })).status,
          scheme,
        ).toBe(200);
      expect((await get('/api/v1/me', { authorization: `Basic ${owner.accessToken}` })).status).toBe(401);
      expect((await get('/api/v1/me', { authorization: `Bearer${owner.accessToken}` })).status).toBe(401);
    });

    it('bidirectional and control characters never reach filename or filename*', async () => {
      const controls = '\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u0007\u009b';
      const title = `invoice\u202Etxt.exe ${controls} done`;
      const id = await seedTranscript(t.services, owner, {
        title,
        segments: [seg(1, 'S1', 0, 'hello there')],
      });
      for (const format of ['txt', 'srt', 'vtt', 'json', 'docx']) {
        const res = await get(`/api/v1/recordings/${id}/export?format=${format}`, {
          authorization: `Bearer ${owner.accessToken}`,
        });
        expect(res.status, res.body.slice(0, 200)).toBe(200);
        const cd = String(res.headers['content-disposition']);
        const m = /^attachment; filename="([A-Za-z0-9._-]+)"; filename\*=UTF-8''([A-Za-z0-9%._~!-]+)$/.exec(
          cd,
        );
        expect(m, cd).not.toBeNull();
        const shown = decodeURIComponent(m![2]!);
        // eslint-disable-next-line no-control-regex -- the point: none of these may remain
        expect(shown).not.toMatch(/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u0000-\u001f\u007f-\u009f]/);
        expect(shown).toBe(`invoicetxt.exe done.${format}`);
      }
    });
  });
});
