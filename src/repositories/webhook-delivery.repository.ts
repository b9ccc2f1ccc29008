import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import {
  assertPublicLiteral,
  assertPublicUrlHost,
  guardedLookup,
  hostOf,
  isPrivateAddress,
  SsrfBlockedError,
} from './ssrf-guard.repository.js';

/**
 * Sends one webhook request (HTTPS POST, bounded in time, no redirects followed) and reports the
 * outcome. The SSRF guard (ssrf-guard.repository.ts, shared with SSO) runs at save time and again
 * at send time, on the address actually connected to: the host name is resolved by the guard's
 * `lookup`, every address is checked, and the socket connects to the checked address (no second
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

export class WebhookSender {
  /** The system's trusted CAs plus the extra file's (node's `ca` option replaces, so both are given). */
  private readonly ca: string[] | undefined;

  constructor(private readonly opts: WebhookSendOptions) {
    this.ca = opts.caFile ? [...tls.rootCertificates, readFileSync(opts.caFile, 'utf8')] : undefined;
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
    const lookup = guardedLookup(this.opts.allowPrivate ? () => false : isPrivateAddress);
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
          lookup,
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
          err instanceof WebhookUrlError || err instanceof SsrfBlockedError
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
