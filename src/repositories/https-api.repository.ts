import type { IncomingMessage } from 'node:http';
import { Agent } from 'node:https';

/**
 * What Sotto's own command-line clients (`sotto worker`, `sotto bot`) share when they talk to a
 * server over HTTPS: the API root under the server's public URL, one TLS agent honouring a private
 * CA (`--ca`) or `--insecure`, a bounded read of an answer, and a plain-words diagnosis of a
 * connection failure. Each client maps the diagnosis onto its own error kinds, because what to do
 * differs: a worker retries a name that does not resolve (its network may come back), the bot,
 * run by a person, stops and says to check --api.
 *
 * node:https rather than fetch: a private CA needs a TLS agent, which the global fetch only takes
 * through undici's own Agent class (not a dependency).
 */
export interface HttpsApiOptions {
  /** PEM of the CA (or self-signed certificate) to trust instead of the system store. */
  ca?: string | Buffer | undefined;
  /** Skip certificate verification entirely (testing only; the CLIs warn loudly). */
  insecure?: boolean | undefined;
  maxSockets?: number | undefined;
}

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
 * under behind a proxy. Returns a message for the user instead when the URL is unusable.
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

export function httpsAgent(opts: HttpsApiOptions): Agent {
  return new Agent({
    keepAlive: true,
    ...(opts.maxSockets ? { maxSockets: opts.maxSockets } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
    rejectUnauthorized: !opts.insecure,
  });
}

export interface ConnectionFailure {
  /** tls: not trusted; dns: the name does not resolve; not_https: something else answers there. */
  kind: 'tls' | 'dns' | 'not_https' | 'unreachable';
  message: string;
}

export function diagnose(err: Error, base: URL): ConnectionFailure {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (TLS_CODES.has(code))
    return {
      kind: 'tls',
      message:
        `the certificate of ${base.host} is not trusted (${code}): pass --ca FILE with the server's ` +
        'CA or self-signed certificate (or --insecure, for testing only)',
    };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return { kind: 'dns', message: `cannot resolve ${base.hostname} (${code}): check --api` };
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message))
    return { kind: 'not_https', message: `${base.host} does not speak HTTPS: check --api` };
  return { kind: 'unreachable', message: `cannot reach ${base.origin} (${code || err.message})` };
}

/** The whole answer body, or undefined (and the response destroyed) beyond `maxBytes`. */
export async function readAnswer(res: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
