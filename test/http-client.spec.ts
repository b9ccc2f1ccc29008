import { readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient, isTimeout, readCapped } from '../src/adapters/network/http-client.adapter.js';
import { guardedFetchWith } from '../src/adapters/network/sso-guarded-fetch.adapter.js';
import {
  isPrivateAddress,
  type Resolver,
  SsrfBlockedError,
} from '../src/adapters/network/ssrf-guard.adapter.js';
import { WebhookSender } from '../src/adapters/network/webhook-delivery.adapter.js';
import { LiveClient, LiveClientError } from '../src/adapters/network/live-client.adapter.js';
import { WorkerApiError, WorkerApiClient } from '../src/adapters/network/worker-api.adapter.js';
import { makePki, type TestPki } from './helpers/tls-backends.js';

/**
 * The one outbound HTTP client (src/adapters/network/http-client.adapter.ts, undici) and the SSRF
 * guard it carries, against real local servers: DNS rebinding, redirects, oversized answers,
 * silent servers, and certificate trust. 127.0.0.1 stands in for a public address (the rule
 * `onlyOne` allows it alone); 127.0.0.2 is the private target an attacker aims at, with a server
 * of its own on the same port that counts every connection it gets.
 */

const PUBLIC_STAND_IN = '127.0.0.1';
const PRIVATE_TARGET = '127.0.0.2';
const onlyOne = (address: string) => address !== PUBLIC_STAND_IN;
const BIG = 4 * 1024 * 1024;

interface Counted {
  server: Server;
  port: number;
  connections: () => number;
  /** Whether the last /big answer was cut by the client before it was all written. */
  bigCut: () => boolean | undefined;
}

function listen(
  server: Pick<Server, 'once' | 'listen' | 'address'>,
  host: string,
  port = 0,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function count(server: Server) {
  let n = 0;
  server.on('connection', () => (n += 1));
  return () => n;
}

/** The routes every test server answers; `other` is where /redirect points. */
function routes(other: () => string) {
  let bigCut: boolean | undefined;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.url === '/redirect') {
      res.writeHead(302, { location: other() }).end();
    } else if (req.url === '/big') {
      bigCut = undefined;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < BIG) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (bigCut = !res.writableFinished));
      pump();
    } else if (req.url === '/hang') {
      // Never answers: the headers time-out must end it.
    } else if (req.url === '/stall') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('a little, then nothing');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }));
    }
  };
  return { handler, bigCut: () => bigCut };
}

async function closeServer(server: Pick<Server, 'closeAllConnections' | 'close'>): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

describe('the one HTTP client and its SSRF guard', () => {
  let pub: Counted;
  let priv: Counted;

  beforeAll(async () => {
    const pubRoutes = routes(() => `http://${PRIVATE_TARGET}:${pub.port}/secret`);
    const pubServer = createServer(pubRoutes.handler);
    const pubConnections = count(pubServer);
    const port = await listen(pubServer, PUBLIC_STAND_IN);
    pub = { server: pubServer, port, connections: pubConnections, bigCut: pubRoutes.bigCut };
    const privRoutes = routes(() => 'http://127.0.0.1/');
    const privServer = createServer(privRoutes.handler);
    const privConnections = count(privServer);
    await listen(privServer, PRIVATE_TARGET, port);
    priv = { server: privServer, port, connections: privConnections, bigCut: privRoutes.bigCut };
  });

  afterAll(async () => {
    await closeServer(pub.server);
    await closeServer(priv.server);
  });

  it('DNS rebinding: each connection is made to the address its own lookup checked', async () => {
    // A rebinding DNS server: a public answer first (what a save-time check would see), then the
    // private target. The second connection is refused before any socket reaches it.
    const answers: LookupAddress[][] = [
      [{ address: PUBLIC_STAND_IN, family: 4 }],
      [{ address: PRIVATE_TARGET, family: 4 }],
      [
        { address: PUBLIC_STAND_IN, family: 4 },
        { address: PRIVATE_TARGET, family: 4 },
      ],
    ];
    const asked: string[] = [];
    const resolve: Resolver = (hostname, callback) => {
      asked.push(hostname);
      callback(null, answers.shift() ?? []);
    };
    const client = new HttpClient({ timeoutMs: 2000, blocked: onlyOne, resolve, fresh: true });
    const url = new URL(`http://rebind.test:${pub.port}/hello`);
    const privBefore = priv.connections();
    try {
      const first = await client.request(url, { method: 'GET' });
      expect(first.status).toBe(200);
      expect(JSON.parse((await readCapped(first.body, 1024))!.toString())).toEqual({ path: '/hello' });
      await expect(client.request(url, { method: 'GET' })).rejects.toBeInstanceOf(SsrfBlockedError);
      // One blocked address among several is enough to refuse the name.
      await expect(client.request(url, { method: 'GET' })).rejects.toBeInstanceOf(SsrfBlockedError);
      // One resolution per connection: no second lookup between the check and the connect.
      expect(asked).toEqual(['rebind.test', 'rebind.test', 'rebind.test']);
      expect(priv.connections()).toBe(privBefore);
    } finally {
      await client.close();
    }
  });

  it('with the real rule, IPv6, IPv4-mapped, NAT64 and metadata answers are refused at connect', async () => {
    for (const address of [
      '127.0.0.1',
      '::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:2',
      '64:ff9b::7f00:1',
      '169.254.169.254',
      'fd00::1',
      'fe80::1',
    ]) {
      const family = address.includes(':') ? 6 : 4;
      const client = new HttpClient({
        timeoutMs: 2000,
        blocked: isPrivateAddress,
        resolve: (_host, callback) => callback(null, [{ address, family }]),
      });
      const before = pub.connections() + priv.connections();
      await expect(
        client.request(new URL(`http://metadata.test:${pub.port}/`), { method: 'GET' }),
        address,
      ).rejects.toBeInstanceOf(SsrfBlockedError);
      expect(pub.connections() + priv.connections(), address).toBe(before);
      await client.close();
    }
  });

  it('a literal address in the URL is checked before any socket (Node skips the lookup for it)', async () => {
    const client = new HttpClient({ timeoutMs: 2000, blocked: isPrivateAddress });
    const before = pub.connections() + priv.connections();
    try {
      for (const host of [
        PUBLIC_STAND_IN,
        PRIVATE_TARGET,
        '[::ffff:127.0.0.1]',
        '[::ffff:7f00:2]',
        '[64:ff9b::7f00:1]',
      ])
        await expect(
          client.request(new URL(`http://${host}:${pub.port}/`), { method: 'GET' }),
          host,
        ).rejects.toBeInstanceOf(SsrfBlockedError);
      expect(pub.connections() + priv.connections()).toBe(before);
    } finally {
      await client.close();
    }
  });

  it('a redirect to a private address is handed back, never followed (SSO fetch and webhooks)', async () => {
    const privBefore = priv.connections();
    const fetchIdp = guardedFetchWith(onlyOne);
    const res = await fetchIdp(`http://${PUBLIC_STAND_IN}:${pub.port}/redirect`, {
      method: 'GET',
      headers: {},
      body: undefined,
      redirect: 'manual',
    });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`http://${PRIVATE_TARGET}:${pub.port}/secret`);
    // A webhook with every address allowed still does not follow: the 3xx is the outcome.
    const sender = new WebhookSender({ allowHttp: true, allowPrivate: true, timeoutMs: 2000 });
    const sent = await sender.send(`http://${PUBLIC_STAND_IN}:${pub.port}/redirect`, '{}', {});
    expect(sent).toEqual({ ok: false, statusCode: 302, error: 'HTTP 302' });
    expect(priv.connections()).toBe(privBefore);
  });

  it('an oversized answer is cut at the cap, not read on', async () => {
    const client = new HttpClient({ timeoutMs: 5000, blocked: onlyOne });
    try {
      const res = await client.request(new URL(`http://${PUBLIC_STAND_IN}:${pub.port}/big`), {
        method: 'GET',
      });
      expect(await readCapped(res.body, 256 * 1024)).toBeUndefined();
      await expect.poll(pub.bigCut).toBe(true);
    } finally {
      await client.close();
    }
    // The IdP fetch refuses an answer over 1 MiB.
    const fetchIdp = guardedFetchWith(onlyOne);
    await expect(
      fetchIdp(`http://${PUBLIC_STAND_IN}:${pub.port}/big`, {
        method: 'GET',
        headers: {},
        body: undefined,
        redirect: 'manual',
      }),
    ).rejects.toThrow(/too large/);
    await expect.poll(pub.bigCut).toBe(true);
    // A webhook receiver's answer is only drained: past 64 KiB the connection is closed and the
    // status decides the outcome.
    const sender = new WebhookSender({ allowHttp: true, allowPrivate: true, timeoutMs: 5000 });
    expect(await sender.send(`http://${PUBLIC_STAND_IN}:${pub.port}/big`, '{}', {})).toEqual({
      ok: true,
      statusCode: 200,
      error: null,
    });
    await expect.poll(pub.bigCut).toBe(true);
  });

  it('a server that sends no headers, or falls silent inside the body, is timed out', async () => {
    const client = new HttpClient({ timeoutMs: 300 });
    try {
      let started = Date.now();
      const hang = await client
        .request(new URL(`http://${PUBLIC_STAND_IN}:${pub.port}/hang`), { method: 'GET' })
        .catch((err: unknown) => err);
      expect((hang as { code?: string }).code).toBe('UND_ERR_HEADERS_TIMEOUT');
      expect(isTimeout(hang)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(3000);

      const res = await client.request(new URL(`http://${PUBLIC_STAND_IN}:${pub.port}/stall`), {
        method: 'GET',
      });
      expect(res.status).toBe(200);
      started = Date.now();
      const stall = await readCapped(res.body, 1024).catch((err: unknown) => err);
      expect((stall as { code?: string }).code).toBe('UND_ERR_BODY_TIMEOUT');
      expect(isTimeout(stall)).toBe(true);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await client.close();
    }
    // The webhook's whole-exchange deadline says it in the delivery log's words.
    const sender = new WebhookSender({ allowHttp: true, allowPrivate: true, timeoutMs: 400 });
    expect(await sender.send(`http://${PUBLIC_STAND_IN}:${pub.port}/hang`, '{}', {})).toEqual({
      ok: false,
      statusCode: null,
      error: 'timed out',
    });
  });
});

describe('the one HTTP client: certificate trust', () => {
  const dir = path.join(tmpdir(), `sotto-http-client-${process.pid}`);
  let pki: TestPki;
  let server: ReturnType<typeof createHttpsServer>;
  let base: string;

  beforeAll(async () => {
    pki = makePki(dir);
    server = createHttpsServer(
      { cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile), minVersion: 'TLSv1.3' },
      (req, res) => {
        req.resume();
        if (req.url === '/api/v1/worker/whoami')
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ id: 'w1', name: 'worker one', orgId: null }));
        else if (req.url === '/api/v1/worker/jobs/claim') {
          // Never answers: the worker's own time-out must end it.
        } else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      },
    );
    // The certificate names DNS:localhost only.
    const port = await listen(server, '127.0.0.1');
    base = `https://localhost:${port}`;
  });

  afterAll(async () => {
    if (server) await closeServer(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a custom CA is trusted; an unknown CA and the system store are not', async () => {
    const trusted = new HttpClient({ timeoutMs: 2000, ca: readFileSync(pki.caFile, 'utf8') });
    const res = await trusted.request(new URL(`${base}/`), { method: 'GET' });
    expect(res.status).toBe(200);
    await res.body.dump();
    await trusted.close();
    for (const ca of [readFileSync(pki.otherCaFile, 'utf8'), undefined]) {
      const untrusted = new HttpClient({ timeoutMs: 2000, ca });
      const err = await untrusted.request(new URL(`${base}/`), { method: 'GET' }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|ISSUER/);
      await untrusted.close();
    }
  });

  it('the worker client: --ca works, another CA is a tls failure, a silent server a network one', async () => {
    const ok = new WorkerApiClient({ baseUrl: base, token: 't', ca: readFileSync(pki.caFile) });
    expect(await ok.whoami()).toEqual({ id: 'w1', name: 'worker one', orgId: null });
    ok.close();
    const wrong = new WorkerApiClient({ baseUrl: base, token: 't', ca: readFileSync(pki.otherCaFile) });
    const refused = await wrong.whoami().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkerApiError);
    expect(refused).toMatchObject({ kind: 'tls', message: expect.stringMatching(/not trusted.*--ca/) });
    wrong.close();
    const slow = new WorkerApiClient({
      baseUrl: base,
      token: 't',
      ca: readFileSync(pki.caFile),
      timeoutMs: 300,
    });
    const silent = await slow.claim().catch((e: unknown) => e);
    expect(silent).toMatchObject({
      kind: 'network',
      message: expect.stringMatching(/no answer from .* in 300 ms/),
    });
    slow.close();
  });

  it('a webhook to an internal CA is delivered with SOTTO_WEBHOOK_CA_FILE, refused without it', async () => {
    const withCa = new WebhookSender({
      allowHttp: false,
      allowPrivate: true,
      timeoutMs: 2000,
      caFile: pki.caFile,
    });
    expect(await withCa.send(`${base}/hook`, '{}', {})).toEqual({ ok: true, statusCode: 200, error: null });
    const without = new WebhookSender({ allowHttp: false, allowPrivate: true, timeoutMs: 2000 });
    const res = await without.send(`${base}/hook`, '{}', {});
    expect(res).toMatchObject({ ok: false, statusCode: null });
    expect(res.error).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|ISSUER/);
  });
  it('the worker and the bot refuse a TLS 1.2 server with the fix in words; a webhook is delivered', async () => {
    // A server (or a proxy in front of one) that stops at TLS 1.2, with the same certificate.
    const old = createHttpsServer(
      { cert: readFileSync(pki.certFile), key: readFileSync(pki.keyFile), maxVersion: 'TLSv1.2' },
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      },
    );
    let handshakes = 0;
    old.on('secureConnection', () => (handshakes += 1));
    const oldBase = `https://localhost:${await listen(old, '127.0.0.1')}`;
    try {
      const ca = readFileSync(pki.caFile);
      const worker = new WorkerApiClient({ baseUrl: oldBase, token: 't', ca });
      const refused = await worker.whoami().catch((e: unknown) => e);
      worker.close();
      expect(refused).toBeInstanceOf(WorkerApiError);
      expect(refused).toMatchObject({
        kind: 'tls',
        message: expect.stringMatching(/only TLS 1\.2 or older.*require TLS 1\.3/),
      });
      const bot = new LiveClient({ baseUrl: oldBase, ca });
      const botRefused = await bot.login('a@example.com', 'correct horse battery').catch((e: unknown) => e);
      bot.close();
      expect(botRefused).toBeInstanceOf(LiveClientError);
      expect((botRefused as Error).message).toMatch(/require TLS 1\.3/);
      // Neither completed a handshake: nothing (the token, the password) was sent over TLS 1.2.
      expect(handshakes).toBe(0);
      // A webhook receiver is someone else's server: TLS 1.2 is still Node's floor there.
      const hook = new WebhookSender({
        allowHttp: false,
        allowPrivate: true,
        timeoutMs: 2000,
        caFile: pki.caFile,
      });
      expect(await hook.send(`${oldBase}/hook`, '{}', {})).toEqual({
        ok: true,
        statusCode: 200,
        error: null,
      });
      expect(handshakes).toBe(1);
    } finally {
      await closeServer(old);
    }
  });
});
