import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { CustomFetch } from 'openid-client';
// The webhooks' address rules (private, loopback, link-local, reserved; IPv4-mapped IPv6):
// one list for every outbound request an org admin can aim.
import { isPrivateAddress } from './webhook-delivery.repository.js';

/** Discovery documents, JWKS and token answers are small; anything bigger is refused. */
const MAX_BODY = 1024 * 1024;

export class SsrfBlockedError extends Error {
  constructor() {
    super('the IdP host resolves to a private address');
    this.name = 'SsrfBlockedError';
  }
}

/** A DNS lookup that refuses any host with an address `blocked` names. */
const lookupGuard =
  (blocked: (address: string) => boolean): LookupFunction =>
  (hostname, options, callback) => {
    dnsLookup(hostname, { all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (addresses.length === 0 || addresses.some((a) => blocked(a.address)))
        return callback(new SsrfBlockedError(), '', 0);
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };

/**
 * openid-client's fetch for an admin-chosen issuer (discovery, JWKS, token endpoint): node's
 * http(s) with the guarded lookup, so the connection goes to the very address that was checked
 * (no DNS-rebinding window), a literal private address is refused before connecting, redirects
 * are never followed (openid-client asks for `manual`) and the answer is capped at 1 MiB.
 */
export const guardedFetch: CustomFetch = (url, options) => guardedFetchWith(isPrivateAddress)(url, options);

/** The same fetch with another address rule (tests: allow loopback to reach a local IdP). */
export const guardedFetchWith =
  (blocked: (address: string) => boolean): CustomFetch =>
  (url, options) =>
    new Promise<Response>((resolve, reject) => {
      const u = new URL(url);
      const host = u.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host) && blocked(host)) return reject(new SsrfBlockedError());
      const client = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : undefined;
      if (!client) return reject(new Error('unsupported protocol'));
      const body =
        options.body === undefined || options.body === null
          ? undefined
          : typeof options.body === 'string'
            ? options.body
            : options.body instanceof URLSearchParams
              ? options.body.toString()
              : options.body instanceof Uint8Array
                ? options.body
                : options.body instanceof ArrayBuffer
                  ? new Uint8Array(options.body)
                  : undefined;
      if (options.body && body === undefined) return reject(new Error('unsupported request body'));
      const req = client.request(
        u,
        {
          method: options.method,
          headers: options.headers,
          lookup: lookupGuard(blocked),
          signal: options.signal,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) {
              req.destroy(new Error('IdP answer too large'));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => {
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (Array.isArray(v)) for (const x of v) headers.append(k, x);
              else if (v !== undefined) headers.set(k, v);
            }
            const status = res.statusCode ?? 502;
            const noBody = status === 204 || status === 304 || options.method === 'HEAD';
            resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, headers }));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
