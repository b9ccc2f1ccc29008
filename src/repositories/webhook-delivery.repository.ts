import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import tls from 'node:tls';

/**
 * Sends one webhook request (HTTPS POST, bounded in time, no redirects followed) and reports the
 * outcome. The SSRF guard lives here because it must run at send time, on the address actually
 * connected to: the host name is resolved by our own `lookup`, every address is checked against
 * private/loopback/link-local ranges, and the socket connects to the checked address (no second
 * resolution a DNS-rebinding server could answer differently). TLS still verifies the host name.
 */
export interface WebhookSendOptions {
  /** SOTTO_WEBHOOK_ALLOW_HTTP: plain http:// URLs (development only). */
  allowHttp: boolean;
  /** SOTTO_WEBHOOK_ALLOW_PRIVATE: private, loopback and link-local addresses (development, tests). */
  allowPrivate: boolean;
  timeoutMs: number;
  /** A file of extra trusted CA certificates (PEM), e.g. an internal CA (SOTTO_WEBHOOK_CA_FILE). */
  caFile?: string | undefined;
}

export interface WebhookSendResult {
  ok: boolean;
  statusCode: number | null;
  /** A short, content-free reason (never the response body). */
  error: string | null;
}

export class WebhookUrlError extends Error {}

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  // Unspecified, loopback and the deprecated IPv4-compatible form (::a.b.c.d, e.g. [::7f00:1]).
  ['::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  // Deprecated site-local: still routed to the local site by some stacks.
  ['fec0::', 10],
  ['ff00::', 8],
  // NAT64 (well-known and local-use prefixes) and 6to4: each embeds an IPv4 address a gateway
  // would connect to, private ones included.
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['2002::', 16],
  // Discard-only.
  ['100::', 64],
  ['2001:db8::', 32],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** Whether an address is private, loopback, link-local, reserved (IPv4-mapped IPv6 included). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Static URL rules (at creation and at send time): scheme, no credentials, literal addresses. */
export function checkWebhookUrl(
  raw: string,
  opts: Pick<WebhookSendOptions, 'allowHttp' | 'allowPrivate'>,
): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError('not a valid URL');
  }
  if (url.protocol !== 'https:' && !(opts.allowHttp && url.protocol === 'http:'))
    throw new WebhookUrlError('the URL must use https');
  if (url.username || url.password) throw new WebhookUrlError('the URL must not carry credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!opts.allowPrivate && (host === 'localhost' || host.endsWith('.localhost')))
    throw new WebhookUrlError('the URL must not point to a private address');
  if (isIP(host) && !opts.allowPrivate && isPrivateAddress(host))
    throw new WebhookUrlError('the URL must not point to a private address');
  return url;
}

export class WebhookSender {
  /** The system's trusted CAs plus the extra file's (node's `ca` option replaces, so both are given). */
  private readonly ca: string[] | undefined;

  constructor(private readonly opts: WebhookSendOptions) {
    this.ca = opts.caFile ? [...tls.rootCertificates, readFileSync(opts.caFile, 'utf8')] : undefined;
  }

  check(raw: string): URL {
    return checkWebhookUrl(raw, this.opts);
  }

  async send(rawUrl: string, body: string, headers: Record<string, string>): Promise<WebhookSendResult> {
    let url: URL;
    try {
      url = this.check(rawUrl);
    } catch (err) {
      return { ok: false, statusCode: null, error: err instanceof Error ? err.message : 'invalid URL' };
    }
    const allowPrivate = this.opts.allowPrivate;
    const guardedLookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { all: true }, (err, addresses: LookupAddress[]) => {
        if (err) return callback(err, '', 0);
        const ok = addresses.filter((a) => allowPrivate || !isPrivateAddress(a.address));
        if (ok.length === 0 || ok.length !== addresses.length)
          return callback(new WebhookUrlError('the host resolves to a private address'), '', 0);
        if ((options as { all?: boolean }).all)
          return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, ok);
        return callback(null, ok[0]!.address, ok[0]!.family);
      });
    };
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<WebhookSendResult>((resolve) => {
      let settled = false;
      const done = (r: WebhookSendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(r);
      };
      // The socket timeout below only notices silence; a receiver that drips a byte now and then
      // would hold the request open for ever. This deadline bounds the whole exchange (connect,
      // TLS, headers and body), well inside the delivery's claim (2 × timeout).
      const deadline = setTimeout(() => {
        done({ ok: false, statusCode: null, error: 'timed out' });
        req.destroy(new Error('timed out'));
      }, this.opts.timeoutMs);
      deadline.unref();
      const req = client.request(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...headers,
          },
          lookup: guardedLookup,
          timeout: this.opts.timeoutMs,
          ...(url.protocol === 'https:' && this.ca ? { ca: this.ca } : {}),
          agent: false,
        },
        (res) => {
          // The body is never read into memory or stored: it could echo anything.
          res.resume();
          const code = res.statusCode ?? 0;
          res.on('end', () =>
            done({
              ok: code >= 200 && code < 300,
              statusCode: code,
              error: code >= 200 && code < 300 ? null : `HTTP ${code}`,
            }),
          );
          res.on('error', () => done({ ok: false, statusCode: code, error: 'response interrupted' }));
          res.on('close', () => {
            if (!res.complete) done({ ok: false, statusCode: code, error: 'response interrupted' });
          });
        },
      );
      req.on('timeout', () => {
        req.destroy(new Error('timed out'));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const reason =
          err instanceof WebhookUrlError
            ? err.message
            : err.message === 'timed out'
              ? 'timed out'
              : (err.code ?? 'connection failed');
        done({ ok: false, statusCode: null, error: reason.slice(0, 200) });
      });
      req.end(body);
    });
  }
}
