import { describe, expect, it } from 'vitest';
import { defaultNodeId, hostIdentity, NODE_ID_PATTERN, type HostIdentity } from './node-id.js';

const here: HostIdentity = {
  hostname: 'media-01',
  bootId: '3b1f0a52-7c39-4a8e-9a43-0b5b7e1f6d21',
  netns: 'net:[4026531840]',
};
const listen = { host: '0.0.0.0', httpsPort: 8443 };

describe('defaultNodeId', () => {
  it('is the same for every restart of a server on one host and port, and readable', () => {
    const id = defaultNodeId(listen, here);
    expect(id).toBe(defaultNodeId({ ...listen }, { ...here }));
    expect(id).toMatch(/^media-01-8443-[0-9a-f]{12}$/);
  });

  it('differs for anything that lets two servers run at once', () => {
    const id = defaultNodeId(listen, here);
    const others = [
      // Another port or address on the host: two servers on one host and one data directory.
      defaultNodeId({ ...listen, httpsPort: 8444 }, here),
      defaultNodeId({ ...listen, host: '127.0.0.1' }, here),
      // Another machine (even one cloned with the same hostname), another container.
      defaultNodeId(listen, { ...here, bootId: 'c0ffee00-0000-4000-8000-000000000000' }),
      defaultNodeId(listen, { ...here, netns: 'net:[4026532301]' }),
      defaultNodeId(listen, { ...here, hostname: 'media-02' }),
    ];
    expect(new Set([id, ...others]).size).toBe(others.length + 1);
  });

  it('has none for port 0: an ephemeral port is another one after a restart', () => {
    expect(defaultNodeId({ ...listen, httpsPort: 0 }, here)).toBeUndefined();
  });

  it('is always a valid SOTTO_NODE_ID, whatever the hostname', () => {
    for (const hostname of ['', 'ü-host_name with spaces', 'a'.repeat(253), 'srv.example.org']) {
      const id = defaultNodeId({ host: '::', httpsPort: 65535 }, { ...here, hostname })!;
      expect(id, hostname).toMatch(NODE_ID_PATTERN);
    }
    // On this machine, as `sotto serve` reads it.
    const real = hostIdentity();
    expect(defaultNodeId(listen, real)).toMatch(NODE_ID_PATTERN);
    if (process.platform === 'linux') {
      expect(real.bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(real.netns).toMatch(/^net:\[\d+\]$/);
    }
  });
});
