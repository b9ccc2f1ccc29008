import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../src/http/server.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * How the server serves the web panel, without a browser: a stand-in build (index.html plus one
 * hashed asset) so these checks run everywhere, Chromium or not.
 */
describe(`web panel serving (${backendLabel})`, () => {
  let t: TestApp;
  let app: FastifyInstance;
  let bare: FastifyInstance;
  let dir: string;
  const html = 'text/html,application/xhtml+xml';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-web-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(
      path.join(dir, 'index.html'),
      '<!doctype html><script type="module" src="/assets/app-abc123.js"></script>',
    );
    writeFileSync(path.join(dir, 'assets', 'app-abc123.js'), 'console.log(1)');
    writeFileSync(path.join(dir, 'secret.txt'), 'not for the web');
    writeFileSync(path.join(dir, 'assets', '.hidden'), 'dotfile');
    t = await startTestApp();
    app = await buildServer({ services: t.services, webRoot: dir });
    bare = await buildServer({ services: t.services, webRoot: path.join(dir, 'no-build-here') });
  });
  afterAll(async () => {
    await app?.close();
    await bare?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (a: FastifyInstance, url: string, accept?: string) =>
    a.inject({ method: 'GET', url, headers: accept ? { accept } : {} });

  it('answers browser navigations with index.html, never cached, under the CSP', async () => {
    for (const url of [
      '/',
      '/recordings',
      '/recordings/5f0c6f7e-6a1b-4c4e-9a39-5b2f0d3e9a11',
      '/login?next=x',
    ]) {
      const res = await get(app, url, html);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type']).toContain('text/html');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.body).toContain('/assets/app-abc123.js');
    }
  });

  it('caches hashed assets for a year', async () => {
    const res = await get(app, '/assets/app-abc123.js');
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toContain('max-age=31536000');
    expect(res.headers['cache-control']).toContain('immutable');
  });

  it('never serves the SPA under /api, nor to requests that are not navigations', async () => {
    for (const url of ['/api', '/api/', '/api/v1/nope', '/api/v1/recordings/x/y/z']) {
      const res = await get(app, url, html);
      expect(res.statusCode, url).toBe(404);
      expect(res.headers['content-type']).toContain('application/problem+json');
    }
    const res = await get(app, '/recordings', 'application/json');
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('not_found');
    // Non-GET methods to panel paths are not routes.
    expect(
      (await app.inject({ method: 'POST', url: '/recordings', headers: { accept: html } })).statusCode,
    ).toBe(404);
  });

  it('serves nothing outside assets/: no traversal, no dotfiles, no listing', async () => {
    for (const url of [
      '/assets/../secret.txt',
      '/assets/%2e%2e/secret.txt',
      '/assets/..%2fsecret.txt',
      '/assets/.hidden',
      '/assets/',
      '/assets/missing.js',
      '/secret.txt',
    ]) {
      const res = await get(app, url);
      expect(res.statusCode, url).not.toBe(200);
      expect(res.body).not.toContain('not for the web');
      expect(res.body).not.toContain('dotfile');
    }
  });

  it('is API-only when the panel was not built', async () => {
    const res = await get(bare, '/', html);
    expect(res.statusCode).toBe(404);
    expect((await get(bare, '/healthz')).statusCode).toBe(200);
  });
});
