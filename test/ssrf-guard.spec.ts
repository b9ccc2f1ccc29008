import { createServer, type AddressInfo, type Server } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedFetch, SsrfBlockedError } from '../src/adapters/network/sso-guarded-fetch.adapter.js';
import { assertPublicUrlHost, isPrivateAddress } from '../src/adapters/network/ssrf-guard.adapter.js';
import { WebhookSender } from '../src/adapters/network/webhook-delivery.adapter.js';
import { call, freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * The one SSRF guard shared by webhooks and SSO issuers (src/adapters/network/ssrf-guard.adapter.ts),
 * with the escape hatches off (SOTTO_WEBHOOK_ALLOW_PRIVATE, SOTTO_SSO_ALLOW_INSECURE_ISSUERS):
 * every IANA special-purpose range is blocked, names are resolved at save time as at send time,
 * and a blocked address is never connected to. Issue 15, item 4.
 */

// One address from each IANA special-purpose block (IPv4 and IPv6 registries), plus the
// deprecated ranges some stacks still route locally.
const BLOCKED = [
  ['0.1.2.3', '0.0.0.0/8 this network'],
  ['10.9.8.7', '10/8 private'],
  ['100.64.0.1', '100.64/10 CGNAT'],
  ['100.127.255.254', '100.64/10 CGNAT, top'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback, top'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['172.16.0.1', '172.16/12 private'],
  ['172.31.255.254', '172.16/12 private, top'],
  ['192.0.0.9', '192.0.0/24 IETF protocol assignments'],
  ['192.0.2.1', 'TEST-NET-1'],
  ['192.31.196.1', 'AS112'],
  ['192.52.193.1', 'AMT'],
  ['192.88.99.1', 'deprecated 6to4 relay anycast'],
  ['192.168.1.1', '192.168/16 private'],
  ['192.175.48.1', 'AS112 direct delegation'],
  ['198.18.0.1', '198.18/15 benchmarking'],
  ['198.19.255.254', '198.18/15 benchmarking, top'],
  ['198.51.100.7', 'TEST-NET-2'],
  ['203.0.113.9', 'TEST-NET-3'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast, top'],
  ['240.0.0.1', '240/4 reserved'],
  ['255.255.255.255', 'limited broadcast'],
  ['::', '::/128 unspecified'],
  ['::1', '::1 loopback'],
  ['::7f00:1', 'IPv4-compatible (deprecated)'],
  ['::ffff:7f00:1', '::ffff:0:0/96 IPv4-mapped, hex'],
  ['::ffff:127.0.0.1', 'IPv4-mapped, dotted'],
  ['::ffff:8.8.8.8', 'IPv4-mapped, even a public IPv4'],
  ['::ffff:0:7f00:1', '::ffff:0:0:0/96 IPv4-translated'],
  ['::ffff:0:808:808', 'IPv4-translated, public IPv4'],
  ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 of 169.254.169.254'],
  ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
  ['64:ff9b:1::1', '64:ff9b:1::/48 local-use NAT64'],
  ['100::1', '100::/64 discard-only'],
  ['100:0:0:1::1', '100:0:0:1::/64 dummy prefix'],
  ['2001::1', '2001::/23 IETF protocol assignments (Teredo)'],
  ['2001:1::1', '2001:1::1 port control'],
  ['2001:2::1', '2001:2::/48 benchmarking'],
  ['2001:3::1', '2001:3::/32 AMT'],
  ['2001:4:112::1', 'AS112-v6'],
  ['2001:10::1', 'ORCHID (deprecated)'],
  ['2001:20::1', 'ORCHIDv2'],
  ['2001:30::1', 'drone remote ID'],
  ['2001:1ff::1', '2001::/23, top'],
  ['2001:db8::1', '2001:db8::/32 documentation'],
  ['2002:7f00:1::1', '6to4'],
  ['2620:4f:8000::1', 'AS112 direct delegation v6'],
  ['3fff::1', '3fff::/20 documentation'],
  ['5f00::1', '5f00::/16 segment routing'],
  ['fc00::1', 'fc00::/7 unique local'],
  ['fd12:3456::1', 'fc00::/7 unique local (fd)'],
  ['fe80::1', 'fe80::/10 link-local'],
  ['febf::1', 'fe80::/10 link-local, top'],
  ['fec0::1', 'site-local (deprecated)'],
  ['ff02::1', 'multicast'],
] as const;

const PUBLIC = [
  '1.1.1.1',
  '8.8.8.8',
  '93.184.215.14',
  '100.63.255.255', // just below CGNAT
  '100.128.0.0', // just above CGNAT
  '172.32.0.1', // just above 172.16/12
  '198.20.0.1', // just above 198.18/15
  '223.255.255.254',
  '2606:4700::1111',
  '2a00:1450:4001::200e',
  '2001:200::1', // just above 2001::/23
  '2003::1',
  '64:ff9b::808:808', // NAT64 of a public IPv4 (DNS64 networks)
];

describe('SSRF guard: address rules', () => {
  it.each(BLOCKED)('blocks %s (%s)', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(PUBLIC)('allows the public address %s', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });

  it('blocks what is not an IP address', () => {
    for (const a of ['', 'localhost', '127.1', '0x7f000001', '2130706433', '1.2.3.4.5', ':::1'])
      expect(isPrivateAddress(a), a).toBe(true);
  });

  it('resolves names at save time as the sender will (/etc/hosts included)', async () => {
    // This machine's own name resolves through /etc/hosts to a loopback or private address.
    await expect(assertPublicUrlHost(new URL(`https://${hostname()}/`))).rejects.toBeInstanceOf(
      SsrfBlockedError,
    );
    for (const url of [
      'https://localhost./',
      'https://localhost%2e/',
      'https://LocalHost../',
      'https://a.localhost/',
    ])
      await expect(assertPublicUrlHost(new URL(url)), url).rejects.toBeInstanceOf(SsrfBlockedError);
    // A name that does not resolve reaches nothing: accepted now, checked again at send time.
    await expect(assertPublicUrlHost(new URL('https://no-such-host.invalid/'))).resolves.toBeUndefined();
  });
});

describe(`SSRF guard through the API and at send time (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  // A plain TCP listener on loopback: it counts every connection the server would open to it.
  let receiver: Server;
  let port = 0;
  let connections = 0;

  beforeAll(async () => {
    // Defaults: no SOTTO_WEBHOOK_ALLOW_PRIVATE, no SOTTO_SSO_ALLOW_INSECURE_ISSUERS.
    t = await startTestApp();
    owner = await createOrgWithUser(t.services);
    receiver = createServer((sock) => {
      connections += 1;
      sock.destroy();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    port = (receiver.address() as AddressInfo).port;
  }, 60_000);
  afterAll(async () => {
    await new Promise((resolve) => receiver?.close(resolve));
    await t?.close();
  });

  const aimedAtThisMachine = () => [
    `https://localhost.:${port}/hook`,
    `https://localhost%2e:${port}/hook`,
    `https://${hostname()}:${port}/hook`,
    `https://[::ffff:0:7f00:1]:${port}/hook`,
    `https://[::ffff:7f00:1]:${port}/hook`,
    `https://127.0.0.1:${port}/hook`,
    `https://169.254.169.254/latest/meta-data`,
  ];

  it('refuses webhook URLs that reach this machine or a special-purpose range, on create and update', async () => {
    for (const url of aimedAtThisMachine()) {
      const res = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/org/webhooks',
        headers: bearer(owner.accessToken),
        payload: { url, events: ['recording.done'] },
      });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().detail, url).toMatch(/private address/);
    }
    const ok = await call(t, freshIp(), {
      method: 'POST',
      url: '/api/v1/org/webhooks',
      headers: bearer(owner.accessToken),
      payload: { url: 'https://hooks.example.invalid/sotto', events: ['recording.done'] },
    });
    expect(ok.statusCode, ok.body).toBe(201);
    for (const url of aimedAtThisMachine()) {
      const res = await call(t, freshIp(), {
        method: 'PATCH',
        url: `/api/v1/org/webhooks/${ok.json().id}`,
        headers: bearer(owner.accessToken),
        payload: { url },
      });
      expect(res.statusCode, url).toBe(400);
    }
    expect(connections).toBe(0);
  });

  it('refuses SSO issuers that reach this machine or a special-purpose range', async () => {
    for (const issuer of [
      `https://127.0.0.1:${port}/`,
      'https://169.254.169.254/',
      ...aimedAtThisMachine().map((u) => u.replace('/hook', '')),
    ]) {
      const res = await call(t, freshIp(), {
        method: 'PUT',
        url: '/api/v1/org/sso',
        headers: bearer(owner.accessToken),
        payload: { issuer, clientId: 'c', clientSecret: 's', allowedDomains: ['ssrf-guard.example'] },
      });
      expect(res.statusCode, issuer).toBe(400);
      expect(res.json().detail, issuer).toMatch(/private address/);
    }
    expect(connections).toBe(0);
  });

  it('never connects at send time: webhooks and the IdP fetch refuse before any socket opens', async () => {
    const sender = new WebhookSender({ allowHttp: false, allowPrivate: false, timeoutMs: 2000 });
    for (const url of aimedAtThisMachine()) {
      const res = await sender.send(url, '{}', {});
      expect(res.ok, url).toBe(false);
      expect(res.error, url).toMatch(/private address/);
    }
    const get = { method: 'GET', headers: {}, body: undefined, redirect: 'manual' as const };
    for (const url of aimedAtThisMachine())
      await expect(guardedFetch(url, get), url).rejects.toBeInstanceOf(SsrfBlockedError);
    expect(connections).toBe(0);
  });
});
