import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { isPrivateAddress } from '../src/adapters/network/ssrf-guard.adapter.js';
import { checkWebhookUrl } from '../src/adapters/network/webhook-delivery.adapter.js';
import { webhookRepository } from '../src/repositories/webhooks/webhook.repository.js';
import { enqueueWebhooks, recordingEvent } from '../src/services/webhooks/webhook-outbox.js';
import { call, freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * The delivery loop under hostile or broken conditions: a delivery that cannot be prepared (its
 * secret does not decrypt) must not stall every other org's deliveries; a receiver that drips its
 * answer a byte at a time is cut off at the deadline (a failed attempt) while other webhooks in
 * the same pass still go out; a lost claim is not settled; the SSRF guard's IPv6 ranges.
 */
describe(`webhook delivery resilience (${backendLabel})`, () => {
  let t: TestApp;
  let a: TestUser;
  let b: TestUser;
  let receiver: https.Server;
  let port: number;
  let dir: string;
  const got: { path: string; delivery: string }[] = [];
  const sockets = new Set<Socket>();
  let dripClosedAt: number | undefined;
  const clock = new ManualClock(new Date(Date.now() + 3600_000));

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-hooks-r-'));
    const cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['receiver.test']);
    receiver = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      req.resume();
      req.on('end', () => {
        got.push({ path: req.url ?? '', delivery: String(req.headers['sotto-delivery']) });
        if (req.url !== '/drip') return void res.end('ok');
        // 200 at once, then a byte every 200 ms for ever: never idle long enough for a socket
        // timeout (1 s here), never finished.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const drip = setInterval(() => res.write('.'), 200);
        res.on('close', () => {
          clearInterval(drip);
          dripClosedAt = Date.now();
        });
      });
    });
    receiver.on('secureConnection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
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
        SOTTO_WEBHOOK_TIMEOUT_SECONDS: '1',
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      },
    });
    a = await createOrgWithUser(t.services, { role: 'owner' });
    b = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await t?.close();
    for (const s of sockets) s.destroy();
    receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const createHook = async (who: TestUser, urlPath: string) => {
    const res = await call(t, freshIp(), {
      method: 'POST',
      url: '/api/v1/org/webhooks',
      headers: bearer(who.accessToken),
      payload: { url: `https://127.0.0.1:${port}${urlPath}`, events: ['recording.failed'] },
    });
    expect(res.statusCode, res.body).toBe(201);
    return (res.json() as { id: string }).id;
  };
  const fire = (who: TestUser, at: Date) =>
    withTenant(t.db, { orgId: who.orgId, userId: null }, (tx) =>
      enqueueWebhooks(tx, recordingEvent(who.orgId, crypto.randomUUID(), 'recording.failed', at)),
    );
  const deliveriesOf = (who: TestUser, hookId: string) =>
    withTenant(t.db, { orgId: who.orgId, userId: null }, (tx) =>
      webhookRepository.deliveries(tx, hookId, 10),
    );
  const removeHook = (who: TestUser, id: string) =>
    withTenant(t.db, { orgId: who.orgId, userId: null }, (tx) => webhookRepository.delete(tx, id));

  it('a delivery whose secret cannot be decrypted is backed off; the other orgs’ deliveries go out', async () => {
    const broken = await createHook(b, '/b');
    const fine = await createHook(a, '/a');
    // As if the org's key were shredded or missing on this node: the ciphertext no longer opens.
    await withTenant(t.db, { orgId: b.orgId, userId: null }, (tx) =>
      tx.query(`UPDATE webhooks SET secret_enc = decode(repeat('00', 60), 'hex') WHERE id = $1`, [broken]),
    );
    await fire(b, new Date(clock.now().getTime() - 60_000)); // the oldest due delivery
    await fire(a, clock.now());
    got.length = 0;
    const logStart = t.logs.length;
    await expect(t.services.webhooks.deliverDue()).resolves.toBe(2);
    expect(got.map((g) => g.path)).toEqual(['/a']);
    const [bad] = await deliveriesOf(b, broken);
    expect(bad).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: null });
    expect(bad!.lastError).toMatch(/^not sent: \S+$/);
    expect(bad!.nextAttemptAt.getTime() - clock.now().getTime()).toBe(30_000);
    const line = t.logs.slice(logStart).find((l) => l.includes('could not be attempted'));
    expect(line).toBeDefined();
    expect(line).toContain(bad!.id);
    // The next pass does not trip on it again until its backoff is over; then it counts again.
    got.length = 0;
    expect(await t.services.webhooks.deliverDue()).toBe(0);
    clock.advance(30_000);
    expect(await t.services.webhooks.deliverDue()).toBe(1);
    expect((await deliveriesOf(b, broken))[0]).toMatchObject({ status: 'pending', attempts: 2 });
    expect((await deliveriesOf(b, broken))[0]!.nextAttemptAt.getTime() - clock.now().getTime()).toBe(60_000);
    await removeHook(b, broken);
    await removeHook(a, fine);
  });

  it('a receiver that drips bytes is cut off at the deadline; another webhook in the pass is delivered', async () => {
    const slow = await createHook(a, '/drip');
    const fast = await createHook(b, '/fast');
    await fire(a, new Date(clock.now().getTime() - 60_000)); // the slow one first in line
    await fire(b, clock.now());
    got.length = 0;
    dripClosedAt = undefined;
    const started = Date.now();
    expect(await t.services.webhooks.deliverDue()).toBe(2);
    const ended = Date.now();
    expect(got.map((g) => g.path).sort()).toEqual(['/drip', '/fast']);
    expect((await deliveriesOf(b, fast))[0]).toMatchObject({ status: 'delivered', attempts: 1 });
    const [cut] = await deliveriesOf(a, slow);
    expect(cut).toMatchObject({ status: 'pending', attempts: 1, lastError: 'timed out' });
    // Aborted by us (the receiver saw its connection close), not left open.
    await new Promise((r) => setTimeout(r, 100));
    expect(dripClosedAt).toBeDefined();
    expect(dripClosedAt!).toBeLessThanOrEqual(ended + 100);
    expect(ended - started).toBeGreaterThanOrEqual(900);
    await removeHook(a, slow);
    await removeHook(b, fast);
  });

  it('an attempt whose claim was taken over by another node is not settled over it', async () => {
    const hook = await createHook(a, '/a');
    await fire(a, clock.now());
    const [d] = await deliveriesOf(a, hook);
    const now = clock.now();
    const first = await withTenant(t.db, { orgId: a.orgId, userId: null }, (tx) =>
      webhookRepository.claim(tx, d!.id, now, new Date(now.getTime() + 2000)),
    );
    // The hold runs out; another node claims the delivery again.
    const later = new Date(now.getTime() + 2500);
    const second = await withTenant(t.db, { orgId: a.orgId, userId: null }, (tx) =>
      webhookRepository.claim(tx, d!.id, later, new Date(later.getTime() + 2000)),
    );
    expect(second?.attempts).toBe(2);
    const outcome = {
      status: 'failed' as const,
      nextAttemptAt: later,
      statusCode: null,
      error: 'timed out',
      deliveredAt: null,
    };
    expect(
      await withTenant(t.db, { orgId: a.orgId, userId: null }, (tx) =>
        webhookRepository.settle(tx, first!, outcome),
      ),
    ).toBe(false);
    expect((await deliveriesOf(a, hook))[0]).toMatchObject({ status: 'pending', attempts: 2 });
    expect(
      await withTenant(t.db, { orgId: a.orgId, userId: null }, (tx) =>
        webhookRepository.settle(tx, second!, { ...outcome, status: 'delivered', deliveredAt: later }),
      ),
    ).toBe(true);
    await removeHook(a, hook);
  });

  it('SSRF guard: IPv4-compatible, 6to4, site-local, discard-only and NAT64 IPv6 addresses are refused', () => {
    const blocked = [
      '::7f00:1', // ::127.0.0.1, IPv4-compatible
      '::a00:1', // ::10.0.0.1
      '::808:808', // even a public IPv4 in the deprecated form
      '2002:7f00:1::1', // 6to4 of 127.0.0.1
      '2002:c0a8:1::1', // 6to4 of 192.168.0.1
      'fec0::1', // site-local
      'feff::1',
      '100::1', // discard-only
      '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
      '64:ff9b::a9fe:a9fe', // NAT64 of 169.254.169.254
      '64:ff9b:1::a00:1', // local-use NAT64
      '::ffff:7f00:1', // IPv4-mapped, hex form
      '100:0:0:1::1', // the dummy prefix (RFC 9780): outside 2000::/3 like every non-global range
    ];
    for (const ip of blocked) {
      expect(isPrivateAddress(ip), ip).toBe(true);
      expect(
        () => checkWebhookUrl(`https://[${ip}]/hook`, { allowHttp: false, allowPrivate: false }),
        ip,
      ).toThrow(/private address/);
    }
    for (const ip of ['2606:4700::1111', '2a00:1450:4001::200e', '2003::1'])
      expect(isPrivateAddress(ip), ip).toBe(false);
  });
});
