import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { CustomFetch } from 'openid-client';
// The one SSRF guard (shared with webhooks): every outbound request an org admin can aim.
import {
  assertPublicLiteral,
  guardedLookup,
  hostOf,
  isPrivateAddress,
  SsrfBlockedError,
} from './ssrf-guard.repository.js';

export { SsrfBlockedError };

/** Discovery documents, JWKS and token answers are small; anything bigger is refused. */
const MAX_BODY = 1024 * 1024;

/**
 * openid-client's fetch for an admin-chosen issuer (discovery, JWKS, token endpoint): node's
 * http(s) with the guarded lookup, so the connection goes to the very address that was checked
 * (no DNS-rebinding window), a literal private address is refused before connecting, redirects
 * are never followed (openid-client asks for `manual`) and the answer is capped at 1 MiB.
 */
export const guardedFetch: CustomFetch = (url, options) => {
  try {
    // Local names (localhost., *.localhost) whatever the resolver would say.
    assertPublicLiteral(hostOf(new URL(url)));
  } catch (err) {
    return Promise.reject(err as Error);
  }
  return guardedFetchWith(isPrivateAddress)(url, options);
};

/** The same fetch with another address rule (tests: allow loopback to reach a local IdP). */
export const guardedFetchWith =
  (blocked: (address: string) => boolean): CustomFetch =>
  (url, options) =>
    new Promise<Response>((resolve, reject) => {
      const u = new URL(url);
      const host = hostOf(u);
      // Node skips `lookup` for a literal address: it is checked here.
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
          lookup: guardedLookup(blocked),
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
