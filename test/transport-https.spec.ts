import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redirectTarget, startTransport, type Transport } from '../src/http/listen.js';
import { ensureSelfSignedCert, type SelfSignedResult } from '../src/adapters/network/tls.adapter.js';
import { freePort } from './helpers/ports.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * The real network path: a TLS 1.3-only HTTPS listener with a generated certificate, the
 * redirect-only HTTP listener, and proxy mode — all on real sockets, no inject().
 */
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function collect(res: IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    res.on('error', reject);
  });
}

function httpGet(port: number, pathAndQuery: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: pathAndQuery, headers }, (res) => {
      collect(res).then(resolve, reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function httpsGet(port: number, ca: string, pathAndQuery: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', servername: 'localhost', port, path: pathAndQuery, ca, agent: false },
      (res) => {
        collect(res).then(resolve, reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes and returns the raw reply (for request targets no client library would send). */
function rawHttp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1', () => sock.write(text));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (out += c));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

function tlsHandshake(
  port: number,
  opts: tls.ConnectionOptions,
): Promise<{ ok: true; protocol: string | null; authorized: boolean } | { ok: false; error: Error }> {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      const result = { ok: true as const, protocol: sock.getProtocol(), authorized: sock.authorized };
      sock.end();
      resolve(result);
    });
    sock.on('error', (error) => resolve({ ok: false, error }));
  });
}

describe(`HTTPS transport on real sockets (${backendLabel})`, () => {
  let t: TestApp;
  let dir: string;
  let cert: SelfSignedResult;
  let direct: Transport;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-tls-'));
    t = await startTestApp({
      env: { SOTTO_HOST: '127.0.0.1', SOTTO_HTTPS_PORT: '0', SOTTO_HTTP_PORT: String(await freePort()) },
    });
    cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['sotto.test']);
    direct = await startTransport({ services: t.services, tls: cert });
  });
  afterAll(async () => {
    await direct?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates the certificate once, key 0600, naming localhost, loopback and the public host', async () => {
    expect(cert.generated).toBe(true);
    expect(statSync(cert.keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(cert.keyFile)).mode & 0o777).toBe(0o700);
    const x509 = new X509Certificate(cert.cert);
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(x509.checkHost('sotto.test')).toBe('sotto.test');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkHost('evil.example')).toBeUndefined();
    const again = await ensureSelfSignedCert(path.join(dir, 'tls'), ['sotto.test']);
    expect(again.generated).toBe(false);
    expect(again.fingerprint).toBe(cert.fingerprint);
    // A new public host name the old certificate does not cover: regenerate.
    const renamed = await ensureSelfSignedCert(path.join(dir, 'tls-2'), ['other.test']);
    expect(renamed.fingerprint).not.toBe(cert.fingerprint);
  });

  it('negotiates TLS 1.3 with a certificate that verifies against itself', async () => {
    const r = await tlsHandshake(direct.address.port, { ca: cert.cert });
    expect(r).toMatchObject({ ok: true, protocol: 'TLSv1.3', authorized: true });
  });

  it('refuses a client limited to TLS 1.2 (and anything older)', async () => {
    const r12 = await tlsHandshake(direct.address.port, {
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      rejectUnauthorized: false,
    });
    expect(r12.ok).toBe(false);
    if (!r12.ok)
      expect(String((r12.error as NodeJS.ErrnoException).code)).toMatch(/PROTOCOL_VERSION|VERSION/);
  });

  it('serves the API over HTTPS with HSTS, CSP and no-store', async () => {
    const res = await httpsGet(direct.address.port, cert.cert, '/healthz');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    const api = await httpsGet(direct.address.port, cert.cert, '/api/v1/nothing');
    expect(api.status).toBe(404);
    expect(api.headers['cache-control']).toBe('no-store');
    expect(api.headers['content-security-policy']).toContain("default-src 'self'");
  });

  it('publishes the OpenAPI document at /api/docs/json', async () => {
    const res = await httpsGet(direct.address.port, cert.cert, '/api/docs/json');
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.body) as { openapi: string; info: { title: string }; paths: object };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('Sotto API');
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/api/v1/'))).toBe(true);
  });

  it('runs the redirect listener only when SOTTO_HTTP_PORT is not 0', async () => {
    expect(direct.mode).toBe('direct');
    expect(direct.redirectAddress?.port).toBe(t.services.config.httpPort);
    const noRedirect = await startTransport({
      services: { ...t.services, config: { ...t.services.config, httpPort: 0 } },
      tls: cert,
    });
    try {
      expect(noRedirect.redirectAddress).toBeUndefined();
    } finally {
      await noRedirect.close();
    }
  });

  it('answers plain HTTP only with a body-less 308 to the public HTTPS URL', async () => {
    const port = direct.redirectAddress!.port;
    const res = await httpGet(port, '/api/v1/me?x=1');
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('https://sotto.test/api/v1/me?x=1');
    expect(res.body).toBe('');
    expect(res.headers['content-length']).toBe('0');
    // Nothing of the application is served there, whatever the path.
    for (const p of ['/healthz', '/api/docs/json', '/.well-known/security.txt']) {
      const r = await httpGet(port, p);
      expect(r.status).toBe(308);
      expect(r.body).toBe('');
    }
  });

  it('never redirects off-site, whatever the request target or Host header says', async () => {
    const port = direct.redirectAddress!.port;
    const viaHost = await httpGet(port, '/x', { host: 'evil.example' });
    expect(viaHost.headers.location).toBe('https://sotto.test/x');
    const schemeRelative = await httpGet(port, '//evil.example/x');
    expect(schemeRelative.headers.location).toBe('https://sotto.test/evil.example/x');
    const absolute = await rawHttp(
      port,
      'GET http://evil.example/steal?a=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n',
    );
    expect(absolute).toMatch(/^HTTP\/1\.1 308/);
    expect(absolute).toMatch(/\r\nlocation: https:\/\/sotto\.test\/steal\?a=1\r\n/i);
    expect(redirectTarget('https://sotto.test', '///\\evil')).toBe('https://sotto.test/\\evil');
    expect(redirectTarget('https://sotto.test/', undefined)).toBe('https://sotto.test/');
  });
});

describe(`proxy mode: plain HTTP behind a trusted TLS proxy (${backendLabel})`, () => {
  let t: TestApp;
  let trusted: Transport;
  let untrusted: Transport;

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_HOST: '127.0.0.1', SOTTO_HTTPS_PORT: '0', SOTTO_HTTP_PORT: '0' } });
    const withProxy = (trustProxy: string[]) => ({
      ...t.services,
      config: { ...t.services.config, trustProxy },
    });
    trusted = await startTransport({ services: withProxy(['127.0.0.1']) });
    // The proxy is elsewhere: X-Forwarded-Proto from 127.0.0.1 must not be believed.
    untrusted = await startTransport({ services: withProxy(['10.9.8.7']) });
  });
  afterAll(async () => {
    await trusted?.close();
    await untrusted?.close();
    await t?.close();
  });

  it('listens on plain HTTP and runs no separate redirect listener', () => {
    expect(trusted.mode).toBe('proxy');
    expect(trusted.redirectAddress).toBeUndefined();
  });

  it('serves requests the trusted proxy received over HTTPS, with HSTS', async () => {
    const res = await httpGet(trusted.address.port, '/api/v1/nothing', { 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(404);
    expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('redirects with 308 (HSTS kept) what the proxy received over plain HTTP', async () => {
    for (const headers of [{ 'x-forwarded-proto': 'http' }, {}] as Record<string, string>[]) {
      const res = await httpGet(trusted.address.port, '/api/v1/me?y=2', headers);
      expect(res.status).toBe(308);
      expect(res.headers.location).toBe('https://sotto.test/api/v1/me?y=2');
      expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
      expect(res.body).toBe('');
    }
  });

  it('ignores X-Forwarded-Proto from an address that is not a trusted proxy', async () => {
    const res = await httpGet(untrusted.address.port, '/api/v1/me', { 'x-forwarded-proto': 'https' });
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('https://sotto.test/api/v1/me');
  });

  it('lets load-balancer probes through without a forwarded protocol', async () => {
    const res = await httpGet(trusted.address.port, '/healthz');
    expect(res.status).toBe(200);
  });
});
