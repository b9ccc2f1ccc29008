import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { AppError } from '../src/domain/errors.js';
import { createLogger } from '../src/http/logger.js';
import { buildServer } from '../src/http/server.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, freshDatabase, testMasterKey } from './helpers/test-app.js';

/**
 * Hostile input at the HTTP edge, against the real server (real routes, real auth, real error
 * handler) plus a few test-only routes registered on it to provoke server errors. Every answer
 * must be a deliberate 4xx problem document; 5xx answers must say nothing about what went wrong.
 */
const BODY_LIMIT = 16 * 1024;
const SECRET = 'db-password=hunter2 at /srv/sotto/src/secret.ts:42';

let app: FastifyInstance;
let services: Services;
let owner: TestUser;
let logs: string[];
let close: () => Promise<void>;

beforeAll(async () => {
  const { db, drop } = await freshDatabase();
  const prefix = `sotto-test-hostile-${randomUUID()}:`;
  const config = loadConfig({
    SOTTO_ENV: 'test',
    SOTTO_MASTER_KEY: testMasterKey(),
    SOTTO_PUBLIC_URL: 'https://sotto.test',
    SOTTO_REDIS_PREFIX: prefix,
    SOTTO_BODY_LIMIT_BYTES: String(BODY_LIMIT),
    PATH: process.env.PATH ?? '',
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
  });
  logs = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const redis = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: 2 }) : undefined;
  services = await createServices({ config, db, redis, logger: createLogger('info', sink) });
  app = await buildServer({ services });
  // Test-only routes: server errors of every kind, and a typed route with a path parameter.
  app.get('/api/v1/test-only/throws', async () => {
    throw new Error(SECRET);
  });
  app.get('/api/v1/test-only/throws-string', async () => {
    throw SECRET as unknown as Error;
  });
  app.get('/api/v1/test-only/app-internal', async () => {
    throw new AppError('internal', SECRET, { path: SECRET });
  });
  app.get('/api/v1/test-only/decryption', async () => {
    throw new AppError('decryption_failed', SECRET);
  });
  app.get('/api/v1/test-only/unavailable', async () => {
    throw new AppError('unavailable', SECRET);
  });
  app.get(
    '/api/v1/test-only/bad-response',
    { schema: { response: { 200: z.object({ ok: z.boolean() }) } } },
    async () => ({ ok: SECRET }) as unknown as { ok: boolean },
  );
  app.get('/api/v1/test-only/items/:id', { schema: { params: z.object({ id: z.guid() }) } }, async (req) => ({
    id: (req.params as { id: string }).id,
  }));
  await app.ready();
  owner = await createOrgWithUser(services);
  close = async () => {
    await app.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
    await drop();
  };
});

afterAll(async () => close?.());

/**
 * Each request from its own client address (documentation range, never contacted: inject makes no
 * network traffic), so that the per-network rate limits of the auth routes do not answer 429 to a
 * test about something else.
 */
let client = 0;
const hit = (opts: InjectOptions) => {
  client += 1;
  return app.inject({ remoteAddress: `198.18.${client >> 8}.${client & 255}`, ...opts });
};

const bearer = () => ({ authorization: `Bearer ${owner.accessToken}` });
const json = { 'content-type': 'application/json' };

function expectProblem(res: {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
  json(): unknown;
}) {
  expect(res.headers['content-type'], res.body.slice(0, 300)).toContain('application/problem+json');
  const body = res.json() as Record<string, unknown>;
  expect(body.status).toBe(res.statusCode);
  expect(typeof body.code).toBe('string');
  return body;
}

describe(`hostile input at the HTTP edge (${backendLabel})`, () => {
  it('still answers health checks', async () => {
    expect((await hit({ url: '/healthz' })).statusCode).toBe(200);
    expect((await hit({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('refuses a body over SOTTO_BODY_LIMIT_BYTES with 413 problem+json (declared or streamed)', async () => {
    const big = JSON.stringify({ vocabulary: ['x'.repeat(BODY_LIMIT)] });
    for (const url of ['/api/v1/org/settings', '/api/v1/auth/login', '/api/v1/unknown']) {
      const res = await hit({
        method: url.endsWith('settings') ? 'PATCH' : 'POST',
        url,
        headers: { ...json, ...bearer() },
        payload: big,
      });
      expect(res.statusCode).toBe(413);
      expect(expectProblem(res).code).toBe('payload_too_large');
    }
    // A lying Content-Length is refused the same way.
    const lying = await hit({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { ...json, 'content-length': String(BODY_LIMIT * 10) },
      payload: '{}',
    });
    expect(lying.statusCode).toBe(413);
    // Just under the limit is parsed (and then judged by the schema).
    const under = await hit({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: { ...json, ...bearer() },
      payload: JSON.stringify({ vocabulary: ['x'.repeat(BODY_LIMIT - 200)] }),
    });
    expect(under.statusCode).toBe(400);
    expect(under.json().code).toBe('validation_failed');
  });

  it('answers malformed JSON with 400 bad_request', async () => {
    for (const payload of ['{"email":', '{"a":1,}', "{'a':1}", 'null garbage', '\u0000\u0001', '']) {
      const res = await hit({ method: 'POST', url: '/api/v1/auth/login', headers: json, payload });
      expect(res.statusCode, payload).toBe(400);
      expect(expectProblem(res).code).toBe('bad_request');
    }
  });

  it('answers a Content-Length that does not match the body with 400, not 415', async () => {
    for (const length of ['1', '5', '-1']) {
      const res = await hit({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { ...json, 'content-length': length },
        payload: '{"email":"a@example.com","password":"x"}',
      });
      expect(res.statusCode, length).toBe(400);
      expect(expectProblem(res).code).toBe('bad_request');
    }
  });

  it('answers a content type it does not speak with 415', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/xml', 'multipart/form-data; boundary=x']) {
      const res = await hit({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { 'content-type': type },
        payload: 'email=a@b.c&password=x',
      });
      expect(res.statusCode, type).toBe(415);
      expect(expectProblem(res).code).toBe('unsupported_media_type');
    }
  });

  it('survives deeply nested JSON with a 4xx', async () => {
    const depth = 2500;
    const nested = `{"vocabulary":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const res = await hit({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: { ...json, ...bearer() },
      payload: nested,
    });
    expect(res.statusCode).toBe(400);
    expectProblem(res);
    const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const res2 = await hit({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: json,
      payload: objects,
    });
    expect(res2.statusCode).toBe(400);
    expectProblem(res2);
  });

  it('rejects prototype-pollution keys (secure-json-parse is on) and pollutes nothing', async () => {
    expect(app.initialConfig.onProtoPoisoning).toBe('error');
    expect(app.initialConfig.onConstructorPoisoning).toBe('error');
    const payloads = [
      '{"__proto__":{"polluted":"yes"},"email":"a@example.com","password":"x"}',
      '{"email":"a@example.com","password":"x","nested":{"__proto__":{"polluted":"yes"}}}',
      '{"constructor":{"prototype":{"polluted":"yes"}},"email":"a@example.com","password":"x"}',
      '{"\\u005f_proto__":{"polluted":"yes"}}',
    ];
    for (const payload of payloads) {
      for (const [method, url] of [
        ['POST', '/api/v1/auth/login'],
        ['PATCH', '/api/v1/org/settings'],
      ] as const) {
        const res = await hit({ method, url, headers: { ...json, ...bearer() }, payload });
        expect(res.statusCode, `${url} ${payload}`).toBe(400);
        expectProblem(res);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('answers garbage, huge or forged bearer tokens with 401, never 500', async () => {
    const none = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url');
    const claims = Buffer.from(
      JSON.stringify({ sub: owner.userId, sid: owner.sessionId, org: owner.orgId }),
    ).toString('base64url');
    const [h, p] = owner.accessToken.split('.');
    const values = [
      `Bearer ${'A'.repeat(12_000)}`,
      `Bearer ${'a'.repeat(4000)}.${'b'.repeat(4000)}.${'c'.repeat(4000)}`,
      `Bearer ${none}.${claims}.`,
      `Bearer ${h}.${p}.${'A'.repeat(86)}`,
      `Bearer ${h}.${claims}.${owner.accessToken.split('.')[2]}`,
      'Bearer ...',
      'Bearer ',
      'Bearer',
      'Basic dXNlcjpwYXNz',
      `Bearer ${owner.accessToken} trailing`,
      'Bearer \u00ff\u00fe\u00fd',
      `Bearer ${Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256)).toString('base64')}`,
    ];
    for (const authorization of values) {
      for (const url of ['/api/v1/org', '/api/v1/org/members', '/api/v1/audit']) {
        const res = await hit({ url, headers: { authorization } });
        expect(res.statusCode, `${url} ${authorization.slice(0, 40)}`).toBe(401);
        expect(expectProblem(res).code).toMatch(/^(unauthenticated|token_expired)$/);
      }
    }
    // The real token still works, so the 401s above are about the tokens, not the routes.
    expect((await hit({ url: '/api/v1/org', headers: bearer() })).statusCode).toBe(200);
  });

  it('answers path traversal and SQL metacharacters in paths and params with 4xx, never 500', async () => {
    const ids = [
      "1' OR '1'='1",
      "'; DROP TABLE users; --",
      '../../../etc/passwd',
      '..%2f..%2f..%2fetc%2fpasswd',
      '%00',
      '%E0%A4%A',
      '%',
      'x'.repeat(500),
      '00000000-0000-0000-0000-000000000000%27',
      '$(id)',
      '{{7*7}}',
    ];
    for (const id of ids) {
      for (const [method, url] of [
        ['PATCH', `/api/v1/org/members/${id}`],
        ['DELETE', `/api/v1/org/members/${id}`],
        ['DELETE', `/api/v1/org/invitations/${id}`],
        ['GET', `/api/v1/test-only/items/${id}`],
        ['GET', `/api/v1/${id}`],
      ] as const) {
        const res = await hit({
          method,
          url,
          headers: { ...bearer(), ...(method === 'PATCH' ? json : {}) },
          ...(method === 'PATCH' ? { payload: '{"role":"admin"}' } : {}),
        });
        expect([400, 404], `${method} ${url.slice(0, 80)} → ${res.statusCode}`).toContain(res.statusCode);
        expectProblem(res);
      }
    }
    const query = await hit({
      url: "/api/v1/org/members?after=1'%20OR%201=1--&limit=1;DROP",
      headers: bearer(),
    });
    expect(query.statusCode).toBe(400);
    expect(query.json().code).toBe('validation_failed');
    // An unknown well-formed id is simply not found.
    const unknown = await hit({
      method: 'DELETE',
      url: `/api/v1/org/members/${randomUUID()}`,
      headers: bearer(),
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('answers wrong types with 400 validation_failed naming the field', async () => {
    const res = await hit({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: { ...json, ...bearer() },
      payload: JSON.stringify({
        retentionDays: '90; DROP TABLE orgs',
        storeAudio: 'yes',
        vocabulary: 'words',
      }),
    });
    expect(res.statusCode).toBe(400);
    const body = expectProblem(res);
    expect(body.code).toBe('validation_failed');
    expect(JSON.stringify(body.errors)).toContain('retentionDays');
  });

  it('never puts internals (messages, stacks, paths) into 5xx problem bodies', async () => {
    const cases = [
      ['/api/v1/test-only/throws', 500, 'internal'],
      ['/api/v1/test-only/throws-string', 500, 'internal'],
      ['/api/v1/test-only/app-internal', 500, 'internal'],
      ['/api/v1/test-only/decryption', 500, 'decryption_failed'],
      ['/api/v1/test-only/unavailable', 503, 'unavailable'],
      ['/api/v1/test-only/bad-response', 500, 'internal'],
    ] as const;
    for (const [url, status, code] of cases) {
      const res = await hit({ url });
      expect(res.statusCode, url).toBe(status);
      const body = expectProblem(res);
      expect(body.code).toBe(code);
      expect(Object.keys(body).sort()).toEqual(['code', 'instance', 'requestId', 'status', 'title', 'type']);
      expect(res.body).not.toContain('hunter2');
      expect(res.body).not.toContain('secret.ts');
      expect(res.body).not.toMatch(/\bat .+:\d+:\d+/); // stack frames
      expect(res.body.toLowerCase()).not.toContain('stack');
    }
    // The operator still learns what happened, from the log (quoting the request id).
    expect(logs.some((l) => l.includes('unhandled error') || l.includes('request failed'))).toBe(true);
  });
});
