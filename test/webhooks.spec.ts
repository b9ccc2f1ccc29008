import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { recordingJobRepository } from '../src/repositories/transcription/recording-job.repository.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { isPrivateAddress } from '../src/adapters/network/ssrf-guard.adapter.js';
import { checkWebhookUrl, WebhookSender } from '../src/adapters/network/webhook-delivery.adapter.js';
import { enqueueWebhooks, recordingEvent } from '../src/services/webhooks/webhook-outbox.js';
import { call, freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { createLive } from './helpers/live.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Webhooks against a real HTTPS receiver (self-signed certificate, trusted through
 * SOTTO_WEBHOOK_CA_FILE): signature and timestamp, retries with backoff on a ManualClock, the
 * delivery log, secret rotation, the SSRF guard, cross-tenant 404 and member 403.
 */
interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Verifies a Sotto-Signature header the way docs/webhooks.md tells receivers to. */
function verify(header: string, body: string, secret: string, nowUnix: number, toleranceSeconds = 300) {
  const parts = header.split(',').map((p) => p.split('=') as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowUnix - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return parts.some(([k, v]) => k === 'v1' && v === expected);
}

describe(`webhooks (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let receiver: https.Server;
  let port: number;
  let dir: string;
  const received: Received[] = [];
  let answer = 200;
  // Ahead of the wall clock: recording deletion stamps its outbox row with the real time (the
  // deletion service has no Clock), and that row must already be due on this clock.
  const clock = new ManualClock(new Date(Date.now() + 3600_000));

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-hooks-'));
    const cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['receiver.test']);
    receiver = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.statusCode = answer;
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    port = (receiver.address() as AddressInfo).port;
    t = await startTestApp({
      clock,
      // Backoffs at their ceiling (no jitter), so each retry's due time is exact.
      random: () => 1,
      env: {
        SOTTO_WEBHOOK_ALLOW_PRIVATE: 'true',
        SOTTO_WEBHOOK_CA_FILE: path.join(dir, 'tls', 'cert.pem'),
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      },
    });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await t?.close();
    receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const req = (who: TestUser, method: string, url: string, payload?: unknown) =>
    call(t, freshIp(), {
      method: method as 'GET',
      url,
      headers: bearer(who.accessToken),
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
  const hookUrl = () => `https://127.0.0.1:${port}/hook`;
  const unix = () => Math.floor(clock.now().getTime() / 1000);

  async function createHook(events = ['recording.done', 'recording.failed', 'recording.deleted']) {
    const res = await req(owner, 'POST', '/api/v1/org/webhooks', { url: hookUrl(), events });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; secret: string };
  }

  async function deliveries(id: string) {
    const res = await req(owner, 'GET', `/api/v1/org/webhooks/${id}/deliveries`);
    expect(res.statusCode).toBe(200);
    return res.json() as {
      id: string;
      status: string;
      attempts: number;
      lastStatusCode: number | null;
      nextAttemptAt: string | null;
    }[];
  }

  it('a deleted recording is delivered once, signed with a timestamp, without title or text', async () => {
    const hook = await createHook();
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const list = await req(owner, 'GET', '/api/v1/org/webhooks');
    expect(list.body).not.toContain(hook.secret);

    const id = await createLive(t, owner.accessToken, freshIp(), 'Therapy with Jane Doe');
    const del = await req(owner, 'DELETE', `/api/v1/recordings/${id}`);
    expect(del.statusCode, del.body).toBe(204);
    received.length = 0;
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    expect(received).toHaveLength(1);
    const got = received[0]!;
    const sig = String(got.headers['sotto-signature']);
    expect(sig).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verify(sig, got.body, hook.secret, unix())).toBe(true);
    expect(verify(sig, got.body, 'whsec_wrong', unix())).toBe(false);
    expect(verify(sig, got.body, hook.secret, unix() + 3600)).toBe(false); // replay window
    expect(got.headers['sotto-event']).toBe('recording.deleted');
    const body = JSON.parse(got.body) as { event: string; data: Record<string, unknown> };
    expect(body).toMatchObject({ event: 'recording.deleted', data: { recordingId: id, status: 'deleted' } });
    expect(got.body).not.toContain('Jane');
    expect(got.body).not.toContain('Therapy');
    expect(await t.services.webhooks.deliverDue()).toBe(0); // delivered once
    const log = await deliveries(hook.id);
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
    await req(owner, 'DELETE', `/api/v1/org/webhooks/${hook.id}`);
  });

  it('a finished transcription job enqueues recording.done in its own transaction', async () => {
    const hook = await createHook(['recording.done']);
    const recordingId = crypto.randomUUID();
    // Real time for the queue (its SQL uses the database clock).
    await withTenant(t.db, { orgId: owner.orgId, userId: owner.userId }, async (tx) => {
      await recordingRepository.insert(tx, {
        id: recordingId,
        orgId: owner.orgId,
        ownerId: owner.userId,
        language: null,
        speakersHint: null,
        now: new Date(),
      });
      await recordingJobRepository.enqueue(tx, { recordingId, orgId: owner.orgId, now: new Date() });
    });
    const job = await t.services.jobQueue.claim();
    expect(job?.recordingId).toBe(recordingId);
    expect(await deliveries(hook.id)).toHaveLength(0); // nothing before the transcript is stored
    const stored = await t.services.jobQueue.complete(job!, {
      body: { segments: [], speakers: [] },
      durationSeconds: 1,
      channels: 1,
      engine: 'test',
    });
    expect(stored).toBe(true);
    received.length = 0;
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      event: 'recording.done',
      data: { recordingId, status: 'done' },
    });
    await req(owner, 'DELETE', `/api/v1/org/webhooks/${hook.id}`);
  });

  it('retries after a 500 with exponential backoff, then delivers; the log shows each step', async () => {
    const hook = await createHook(['recording.failed']);
    await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
      enqueueWebhooks(tx, recordingEvent(owner.orgId, crypto.randomUUID(), 'recording.failed', clock.now())),
    );
    answer = 500;
    received.length = 0;
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    let log = await deliveries(hook.id);
    expect(log[0]).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 500 });
    expect(Date.parse(log[0]!.nextAttemptAt!) - clock.now().getTime()).toBe(30_000);
    expect(await t.services.webhooks.deliverDue()).toBe(0); // not due yet
    clock.advance(30_000);
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    log = await deliveries(hook.id);
    expect(log[0]).toMatchObject({ status: 'pending', attempts: 2 });
    expect(Date.parse(log[0]!.nextAttemptAt!) - clock.now().getTime()).toBe(60_000);
    answer = 200;
    clock.advance(60_000);
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    log = await deliveries(hook.id);
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200 });
    expect(received).toHaveLength(3);
    // The same event every time (same delivery id), each signed afresh.
    expect(new Set(received.map((r) => r.headers['sotto-delivery'])).size).toBe(1);
    // Redeliver: a new delivery of the same payload.
    const again = await req(
      owner,
      'POST',
      `/api/v1/org/webhooks/${hook.id}/deliveries/${log[0]!.id}/redeliver`,
    );
    expect(again.statusCode, again.body).toBe(202);
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    expect(received).toHaveLength(4);
    expect(JSON.parse(received[3]!.body).data).toEqual(JSON.parse(received[0]!.body).data);
    await req(owner, 'DELETE', `/api/v1/org/webhooks/${hook.id}`);
  });

  it('refuses unsafe URLs: not https, credentials, private and loopback addresses (SSRF)', async () => {
    const strict = { allowHttp: false, allowPrivate: false };
    for (const url of [
      'http://example.com/hook',
      'ftp://example.com/',
      'https://user:pw@example.com/',
      'https://127.0.0.1/',
      'https://10.1.2.3/',
      'https://192.168.0.10/',
      'https://172.16.5.4/',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/',
      'https://[fd00::1]/',
      'https://[::ffff:127.0.0.1]/',
      'https://localhost/',
      'not a url',
    ])
      expect(() => checkWebhookUrl(url, strict), url).toThrow();
    expect(checkWebhookUrl('https://hooks.example.com/x', strict).host).toBe('hooks.example.com');
    for (const a of ['127.0.0.1', '10.0.0.1', '::1', 'fe80::1', '::ffff:10.0.0.1', '100.64.0.1'])
      expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['93.184.215.14', '2606:4700::1111']) expect(isPrivateAddress(a), a).toBe(false);
    // At send time the name is resolved and every address checked (the machine's own name
    // resolves to a loopback or private address here).
    const sender = new WebhookSender({ ...strict, timeoutMs: 2000 });
    const res = await sender.send(`https://${hostname()}:${port}/hook`, '{}', {});
    expect(res.ok).toBe(false);
    expect(res.error).toMatch(/private address|ENOTFOUND|EAI_AGAIN/);
    // Through the API (this app allows private addresses for the receiver, not plain http).
    for (const url of ['http://example.com/hook', 'https://user:pw@example.com/', 'nope'])
      expect(
        (await req(owner, 'POST', '/api/v1/org/webhooks', { url, events: ['recording.done'] })).statusCode,
      ).toBe(400);
  });

  it('hostile input is 400', async () => {
    for (const payload of [
      { url: hookUrl(), events: [] },
      { url: hookUrl(), events: ['recording.created'] },
      { url: hookUrl(), events: 'recording.done' },
      { url: 'https://example.com/' + 'a'.repeat(3000), events: ['recording.done'] },
      { url: hookUrl(), events: ['recording.done'], secret: 'mine' },
      { url: 42, events: ['recording.done'] },
      {},
    ])
      expect(
        (await req(owner, 'POST', '/api/v1/org/webhooks', payload)).statusCode,
        JSON.stringify(payload),
      ).toBe(400);
  });

  it("another org's webhook is exactly 404 on every route; members get 403", async () => {
    const hook = await createHook(['recording.done']);
    const [d] = await deliveries(hook.id);
    const deliveryId = d?.id ?? crypto.randomUUID();
    const routes: [string, string, unknown?][] = [
      ['PATCH', `/api/v1/org/webhooks/${hook.id}`, { enabled: false }],
      ['DELETE', `/api/v1/org/webhooks/${hook.id}`],
      ['POST', `/api/v1/org/webhooks/${hook.id}/rotate-secret`],
      ['GET', `/api/v1/org/webhooks/${hook.id}/deliveries`],
      ['POST', `/api/v1/org/webhooks/${hook.id}/deliveries/${deliveryId}/redeliver`],
    ];
    for (const [method, url, payload] of routes) {
      const res = await req(other, method, url, payload);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    expect(((await req(other, 'GET', '/api/v1/org/webhooks')).json() as unknown[]).length).toBe(0);
    for (const [method, url, payload] of [
      ...routes,
      ['GET', '/api/v1/org/webhooks'],
      ['POST', '/api/v1/org/webhooks', { url: hookUrl(), events: ['recording.done'] }],
    ] as [string, string, unknown?][]) {
      const res = await req(member, method, url, payload);
      expect(res.statusCode, `member ${method} ${url}`).toBe(403);
    }
    // Still there, still enabled.
    const mine = (await req(owner, 'GET', '/api/v1/org/webhooks')).json() as {
      id: string;
      enabled: boolean;
    }[];
    expect(mine.find((h) => h.id === hook.id)?.enabled).toBe(true);
    const off = await req(owner, 'PATCH', `/api/v1/org/webhooks/${hook.id}`, { enabled: false });
    expect(off.json()).toMatchObject({ enabled: false });
  });

  // Late: it moves the clock a day on (past the access tokens' lifetime).
  it('rotation: both secrets sign during the grace period, then only the new one', async () => {
    const hook = await createHook(['recording.done']);
    const rot = await req(owner, 'POST', `/api/v1/org/webhooks/${hook.id}/rotate-secret`);
    expect(rot.statusCode, rot.body).toBe(200);
    const { secret } = rot.json() as { secret: string };
    expect(secret).not.toBe(hook.secret);
    const fire = async () => {
      await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
        enqueueWebhooks(tx, recordingEvent(owner.orgId, crypto.randomUUID(), 'recording.done', clock.now())),
      );
      received.length = 0;
      expect(await t.services.webhooks.deliverDue()).toBe(1);
      return received[0]!;
    };
    let got = await fire();
    let sig = String(got.headers['sotto-signature']);
    expect(sig.match(/v1=/g)).toHaveLength(2);
    expect(verify(sig, got.body, secret, unix())).toBe(true);
    expect(verify(sig, got.body, hook.secret, unix())).toBe(true);
    clock.advance(24 * 3600 * 1000 + 1000);
    got = await fire();
    sig = String(got.headers['sotto-signature']);
    expect(sig.match(/v1=/g)).toHaveLength(1);
    expect(verify(sig, got.body, secret, unix())).toBe(true);
    expect(verify(sig, got.body, hook.secret, unix())).toBe(false);
    await req(owner, 'DELETE', `/api/v1/org/webhooks/${hook.id}`);
  });

  it('no log line carries a webhook secret', () => {
    const logs = t.logs.join('\n');
    expect(logs).not.toMatch(/whsec_[A-Za-z0-9_-]{10}/);
  });
});
