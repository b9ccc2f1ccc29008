import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { drainCapped, HttpClient, isTimeout } from './http-client.adapter.js';
import {
  assertPublicLiteral,
  assertPublicUrlHost,
  hostOf,
  isPrivateAddress,
  SsrfBlockedError,
} from './ssrf-guard.adapter.js';

/**
 * Sends one webhook request (HTTPS POST, bounded in time, no redirects followed) and reports the
 * outcome, on the one HTTP client (http-client.adapter.ts). The SSRF guard
 * (ssrf-guard.adapter.ts, shared with SSO) runs at save time and again at send time, on the
 * address actually connected to: the host name is resolved by the guard's `lookup`, every address
 * is checked, and the socket connects to the checked address (no second resolution a
 * DNS-rebinding server could answer differently). TLS still verifies the host name.
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
  if (!opts.allowPrivate) {
    try {
      assertPublicLiteral(hostOf(url));
    } catch (err) {
      asWebhookUrlError(err);
    }
  }
  return url;
}

/** The guard's refusal as this module's error (its message is shown to the admin). */
function asWebhookUrlError(err: unknown): never {
  if (err instanceof SsrfBlockedError) throw new WebhookUrlError(err.message);
  throw err;
}

/** A receiver's answer is read only to see it end; past this, the connection is closed instead. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class WebhookSender {
  /** One client: its agent carries the trust and the guard's lookup for every delivery. */
  private readonly client: HttpClient;

  constructor(private readonly opts: WebhookSendOptions) {
    this.client = new HttpClient({
      timeoutMs: opts.timeoutMs,
      // The system's trusted CAs plus the extra file's (node's `ca` option replaces, so both).
      ca: opts.caFile ? [...tls.rootCertificates, readFileSync(opts.caFile, 'utf8')] : undefined,
      blocked: opts.allowPrivate ? () => false : isPrivateAddress,
      fresh: true,
    });
  }

  check(raw: string): URL {
    return checkWebhookUrl(raw, this.opts);
  }

  /** Save-time check: the static rules, then the host name resolved as `send` will resolve it. */
  async checkBeforeSave(raw: string): Promise<URL> {
    const url = this.check(raw);
    if (!this.opts.allowPrivate) await assertPublicUrlHost(url).catch(asWebhookUrlError);
    return url;
  }

  async send(rawUrl: string, body: string, headers: Record<string, string>): Promise<WebhookSendResult> {
    let url: URL;
    try {
      url = this.check(rawUrl);
    } catch (err) {
      return { ok: false, statusCode: null, error: err instanceof Error ? err.message : 'invalid URL' };
    }
    // The client's time-outs only notice silence; a receiver that drips a byte now and then would
    // hold the request open for ever. This deadline bounds the whole exchange (connect, TLS,
    // headers and body), well inside the delivery's claim (2 × timeout).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error('timed out')), this.opts.timeoutMs);
    timer.unref();
    try {
      const res = await this.client.request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          ...headers,
        },
        body,
        signal: deadline.signal,
      });
      const code = res.status;
      // The body is never kept or stored (it could echo anything): read to its end, or cut.
      if ((await drainCapped(res.body, MAX_ANSWER_BYTES)) === 'interrupted')
        return deadline.signal.aborted
          ? { ok: false, statusCode: null, error: 'timed out' }
          : { ok: false, statusCode: code, error: 'response interrupted' };
      const ok = code >= 200 && code < 300;
      return { ok, statusCode: code, error: ok ? null : `HTTP ${code}` };
    } catch (err) {
      const reason =
        err instanceof SsrfBlockedError
          ? err.message
          : deadline.signal.aborted || isTimeout(err)
            ? 'timed out'
            : ((err as NodeJS.ErrnoException).code ?? 'connection failed');
      return { ok: false, statusCode: null, error: reason.slice(0, 200) };
    } finally {
      clearTimeout(timer);
    }
  }
}
