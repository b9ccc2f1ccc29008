import type { CustomFetch } from 'openid-client';
import { HttpClient, readCapped } from './http-client.adapter.js';
// The one SSRF guard (shared with webhooks): every outbound request an org admin can aim.
import { assertPublicLiteral, hostOf, isPrivateAddress, SsrfBlockedError } from './ssrf-guard.adapter.js';

export { SsrfBlockedError };

/** Discovery documents, JWKS and token answers are small; anything bigger is refused. */
const MAX_BODY = 1024 * 1024;
/** openid-client's own per-request time-out (its signal); the client's silence bounds match it. */
const TIMEOUT_MS = 10_000;

/**
 * openid-client's fetch for an admin-chosen issuer (discovery, JWKS, token endpoint), on the one
 * HTTP client (http-client.adapter.ts) with the guard's lookup, so the connection goes to the
 * very address that was checked (no DNS-rebinding window), a literal private address is refused
 * before connecting, redirects are never followed (openid-client asks for `manual`: the 3xx is
 * handed back as it came) and the answer is capped at 1 MiB.
 */
export const guardedFetch: CustomFetch = (url, options) => {
  try {
    // Local names (localhost., *.localhost) whatever the resolver would say.
    assertPublicLiteral(hostOf(new URL(url)));
  } catch (err) {
    return Promise.reject(err as Error);
  }
  return defaultFetch(url, options);
};

/** The same fetch with another address rule (tests: allow loopback to reach a local IdP). */
export const guardedFetchWith = (blocked: (address: string) => boolean): CustomFetch => {
  const client = new HttpClient({ timeoutMs: TIMEOUT_MS, blocked, fresh: true });
  return async (url, options) => {
    const body = requestBody(options.body);
    const res = await client.request(new URL(url), {
      method: options.method,
      headers: options.headers,
      body,
      signal: options.signal,
    });
    const answer = await readCapped(res.body, MAX_BODY);
    if (!answer) throw new Error('IdP answer too large');
    const headers = new Headers();
    for (const [k, v] of Object.entries(res.headers)) {
      if (Array.isArray(v)) for (const x of v) headers.append(k, x);
      else if (v !== undefined) headers.set(k, v);
    }
    const noBody = res.status === 204 || res.status === 304 || options.method === 'HEAD';
    return new Response(noBody ? null : answer, { status: res.status, headers });
  };
};

const defaultFetch = guardedFetchWith(isPrivateAddress);

/** openid-client's request bodies: strings, forms and bytes. */
function requestBody(body: Parameters<CustomFetch>[1]['body']): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new Error('unsupported request body');
}
