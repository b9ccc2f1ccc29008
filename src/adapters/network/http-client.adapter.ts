import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { Agent, type Dispatcher, request } from 'undici';
import { guardedLookup, hostOf, type Resolver, SsrfBlockedError } from './ssrf-guard.adapter.js';

/**
 * The one outbound HTTP client (undici): webhook delivery, the SSO issuer fetch, and the HTTPS
 * calls of `sotto worker` and `sotto bot`. Each caller builds one HttpClient with its own trust
 * and bounds and maps failures onto its own error kinds; what they share lives here:
 *
 * - one undici `Agent` whose `connect` options carry the TLS trust (`ca` replaces the system
 *   store, as in node:tls) and, for admin-aimed URLs, the SSRF guard's `lookup`: the name is
 *   resolved once, every address checked, and the socket connects to a checked address, so a DNS
 *   server that answers differently the second time gains nothing. Node skips `lookup` for a
 *   literal address, so `request` checks literals itself before dispatching;
 * - time bounds: connect, response headers and body silence each end after `timeoutMs` (undici's
 *   connect timeout, headersTimeout and bodyTimeout); a whole-exchange deadline is the caller's
 *   `signal`;
 * - redirects are never followed (undici's request does not): a 3xx reaches the caller like any
 *   other answer, and each caller refuses it in its own words;
 * - bodies are read with a size cap (`readCapped`, `drainCapped`), never unbounded into memory.
 */
export interface HttpClientOptions {
  /** Connect, headers and body-silence bound, each (ms). */
  timeoutMs: number;
  /** PEM(s) to trust instead of the system store (e.g. a private CA, or system roots + one more). */
  ca?: string | Buffer | readonly string[] | undefined;
  /** Skip certificate verification entirely (testing only; the CLIs warn loudly). */
  insecure?: boolean | undefined;
  /** The SSRF guard's rule: set, every address connected to (looked up or literal) must pass it. */
  blocked?: ((address: string) => boolean) | undefined;
  /** The resolver behind the guard (default: the system's; tests script a rebinding one). */
  resolve?: Resolver | undefined;
  /** Connections per origin (default: undici's, unlimited). */
  connections?: number | undefined;
  /**
   * One connection per request, closed after it (no pool to an admin-chosen host kept open
   * between requests); the API clients keep theirs alive instead.
   */
  fresh?: boolean | undefined;
  /**
   * Refuse any protocol below TLS 1.3: set by Sotto's own clients (`sotto worker`, `sotto bot`),
   * whose server speaks only 1.3, so a downgrade can only be an interposed party. Webhooks and the
   * SSO fetch reach other people's servers and keep Node's floor (TLS 1.2).
   */
  tls13Only?: boolean | undefined;
}

export interface HttpRequest {
  method: string;
  headers?: Record<string, string> | undefined;
  body?: string | Uint8Array | undefined;
  /** Aborts the exchange (connect, headers or body): a caller's overall deadline. */
  signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Must be read (`readCapped`, `drainCapped`, piped) or destroyed by the caller. */
  body: Dispatcher.ResponseData['body'];
}

/** undici's own time-outs: connect, response headers, silence inside the body. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Whether `err` is one of this client's time-outs (not an abort by the caller's signal). */
export const isTimeout = (err: unknown): boolean =>
  TIMEOUT_CODES.has((err as { code?: unknown } | null)?.code as string);

export class HttpClient {
  private readonly agent: Agent;

  constructor(private readonly opts: HttpClientOptions) {
    this.agent = new Agent({
      connect: {
        ...(opts.ca
          ? { ca: typeof opts.ca === 'string' || Buffer.isBuffer(opts.ca) ? opts.ca : [...opts.ca] }
          : {}),
        rejectUnauthorized: !opts.insecure,
        ...(opts.tls13Only ? { minVersion: 'TLSv1.3' as const } : {}),
        ...(opts.blocked ? { lookup: guardedLookup(opts.blocked, opts.resolve) } : {}),
        timeout: opts.timeoutMs,
      },
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      ...(opts.connections ? { connections: opts.connections } : {}),
    });
  }

  /**
   * One request. Rejects with SsrfBlockedError for a guarded literal address (before any socket)
   * or a guarded name (from the lookup, before connecting); otherwise with undici's or the
   * socket's error (`code` set: ECONNREFUSED, a TLS code, UND_ERR_*).
   */
  async request(url: URL, req: HttpRequest): Promise<HttpResponse> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('unsupported protocol');
    const host = hostOf(url);
    if (this.opts.blocked && isIP(host) !== 0 && this.opts.blocked(host)) throw new SsrfBlockedError();
    const res = await request(url, {
      dispatcher: this.agent,
      method: req.method as Dispatcher.HttpMethod,
      ...(req.headers ? { headers: req.headers } : {}),
      ...(req.body !== undefined ? { body: req.body } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
      ...(this.opts.fresh ? { reset: true } : {}),
    });
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }

  /** Closes idle connections and refuses new requests; in-flight ones end with an error. */
  async close(): Promise<void> {
    await this.agent.destroy();
  }
}

/**
 * The whole body, or undefined (and the connection cut) beyond `maxBytes`. A body cut by the
 * peer or a time-out rejects with that error.
 */
export async function readCapped(
  body: HttpResponse['body'],
  maxBytes: number,
): Promise<Buffer<ArrayBuffer> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads and discards a body nobody needs (a webhook receiver's answer): `complete`, `cut` (more
 * than `maxBytes`: the connection is closed rather than read on) or `interrupted` (the peer cut
 * it, or it fell silent past the body time-out).
 */
export async function drainCapped(
  body: HttpResponse['body'],
  maxBytes: number,
): Promise<'complete' | 'cut' | 'interrupted'> {
  try {
    return (await readCapped(body, maxBytes)) ? 'complete' : 'cut';
  } catch {
    return 'interrupted';
  }
}

/** The server (or a proxy in front of it) offers nothing our floor accepts: below TLS 1.3. */
const TLS_VERSION_CODES = new Set(['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_UNSUPPORTED_PROTOCOL']);

/** Certificate errors: the server is reachable but not trusted. */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * `sub` (e.g. "api/v1/") under the server's public URL, keeping a path prefix the server may live
 * under behind a proxy. Returns a message for the user instead when the URL is unusable. (Sotto's
 * own clients, `sotto worker` and `sotto bot`, which speak HTTPS only.)
 */
export function apiRoot(raw: string, sub: string): URL | { error: string } {
  let base: URL;
  try {
    base = new URL(raw);
  } catch {
    return { error: `--api: "${raw}" is not a URL` };
  }
  if (base.protocol !== 'https:') return { error: `--api must be an https:// URL (got ${base.protocol}//)` };
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(sub, base);
}

export interface ConnectionFailure {
  /** tls: not trusted; dns: the name does not resolve; not_https: something else answers there. */
  kind: 'tls' | 'dns' | 'not_https' | 'unreachable';
  message: string;
}

/**
 * A plain-words diagnosis of a connection failure to Sotto's own server. Each CLI client maps it
 * onto its own error kinds, because what to do differs: a worker retries a name that does not
 * resolve (its network may come back), the bot, run by a person, stops and says to check --api.
 */
export function diagnose(err: Error, base: URL): ConnectionFailure {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (TLS_CODES.has(code))
    return {
      kind: 'tls',
      message:
        `the certificate of ${base.host} is not trusted (${code}): pass --ca FILE with the server's ` +
        'CA or self-signed certificate (or --insecure, for testing only)',
    };
  if (TLS_VERSION_CODES.has(code))
    return {
      kind: 'tls',
      message:
        `${base.host} offers only TLS 1.2 or older (${code}); Sotto's clients require TLS 1.3, ` +
        'as its server does: configure the proxy or load balancer in front of it for TLS 1.3',
    };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return { kind: 'dns', message: `cannot resolve ${base.hostname} (${code}): check --api` };
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message))
    return { kind: 'not_https', message: `${base.host} does not speak HTTPS: check --api` };
  return { kind: 'unreachable', message: `cannot reach ${base.origin} (${code || err.message})` };
}
