import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/**
 * TLS to PostgreSQL and Redis (ASVS 12.3.x, docs/deployment.md#tls-to-postgresql-and-redis).
 * Parsed here, once, so every connection — `sotto serve`, `sotto migrate`, the pg pool and its
 * LISTEN connections, ioredis and its pub/sub duplicates — gets the same settings, and a bad
 * setting is named at start instead of surfacing as a connection error later.
 *
 * Only a verifying mode is offered: `sslmode=verify-full` (chain to the CA *and* the host name),
 * never `require`/`verify-ca`, which a man in the middle with any certificate (or any certificate
 * of the CA) passes.
 */
export interface BackendTls {
  /** PEM of the CA the server's certificate must chain to; undefined: the system's trusted CAs. */
  ca: string | undefined;
}

export interface DatabaseTarget {
  /** DATABASE_URL without its ssl* parameters (the TLS settings travel in `tls`, never twice). */
  url: string | undefined;
  tls: BackendTls | undefined;
}

// Parameters pg would otherwise read from the URL itself (files included) and that would override
// the explicit settings: TLS comes from sslmode and SOTTO_DATABASE_CA_FILE only.
const SSL_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'ssl', 'sslnegotiation'];

/** The only query parameter REDIS_URL may carry (IPv4/IPv6 choice); nothing that changes TLS. */
const REDIS_URL_PARAMS = new Set(['family']);

/** Loopback and local-socket targets need no TLS; everything else crosses a network. */
export function isLocalHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === '' || h.startsWith('/') || h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || h.startsWith('::ffff:127.');
}

export function readCa(variable: string, file: string, problems: string[]): string | undefined {
  if (!existsSync(file)) {
    problems.push(`${variable}: ${file} does not exist`);
    return undefined;
  }
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`${variable}: ${file}: ${(err as Error).message}`);
    return undefined;
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push(`${variable}: ${file} holds no PEM certificate`);
    return undefined;
  }
  return pem;
}

export function databaseTarget(
  v: { DATABASE_URL?: string | undefined; SOTTO_DATABASE_CA_FILE?: string | undefined; SOTTO_ENV: string },
  problems: string[],
): DatabaseTarget {
  const caFile = v.SOTTO_DATABASE_CA_FILE;
  if (v.DATABASE_URL === undefined) {
    if (caFile !== undefined) problems.push('SOTTO_DATABASE_CA_FILE: set without DATABASE_URL');
    return { url: undefined, tls: undefined };
  }
  const url = new URL(v.DATABASE_URL);
  const mode = url.searchParams.get('sslmode');
  const extra = SSL_PARAMS.filter((p) => p !== 'sslmode' && url.searchParams.has(p));
  if (extra.length > 0) {
    problems.push(
      `DATABASE_URL: ${extra.join(', ')} not supported: use sslmode=verify-full and SOTTO_DATABASE_CA_FILE`,
    );
  }
  if (mode !== null && mode !== 'verify-full' && mode !== 'disable') {
    problems.push(
      `DATABASE_URL: sslmode=${mode} does not verify the server: use sslmode=verify-full (or sslmode=disable for a trusted network)`,
    );
  }
  if (mode === 'disable' && caFile !== undefined) {
    problems.push('SOTTO_DATABASE_CA_FILE: set, but DATABASE_URL says sslmode=disable');
  }
  const ca = caFile !== undefined ? readCa('SOTTO_DATABASE_CA_FILE', caFile, problems) : undefined;
  const tls = mode === 'verify-full' || (caFile !== undefined && mode !== 'disable');
  // The host pg connects to: pg-connection-string lets a ?host= parameter win over the URL's host
  // (the last one when repeated), so the plaintext check must judge that one, not the URL's.
  // hostaddr would name yet another address: refused.
  const hostParams = url.searchParams.getAll('host');
  if (hostParams.length > 1) problems.push('DATABASE_URL: host is given more than once');
  if (url.searchParams.has('hostaddr'))
    problems.push('DATABASE_URL: hostaddr is not supported: name the server in the host');
  // URL.hostname of a socket-directory URL (postgres://%2Frun%2Fpostgresql/db) is the encoded path.
  const host = hostParams.at(-1) ?? decodeURIComponent(url.hostname);
  if (v.SOTTO_ENV === 'production' && !tls && mode !== 'disable' && !isLocalHost(host)) {
    problems.push(
      `DATABASE_URL: ${host} is not on this machine: add sslmode=verify-full (and SOTTO_DATABASE_CA_FILE for a private CA), or sslmode=disable to accept plaintext on a network you trust`,
    );
  }
  for (const p of SSL_PARAMS) url.searchParams.delete(p);
  return { url: url.toString(), tls: tls ? { ca } : undefined };
}

export function redisTls(
  v: {
    REDIS_URL?: string | undefined;
    SOTTO_REDIS_CA_FILE?: string | undefined;
    SOTTO_REDIS_ALLOW_PLAINTEXT?: boolean | undefined;
    SOTTO_ENV: string;
  },
  problems: string[],
): BackendTls | undefined {
  const caFile = v.SOTTO_REDIS_CA_FILE;
  if (v.REDIS_URL === undefined) {
    if (caFile !== undefined) problems.push('SOTTO_REDIS_CA_FILE: set without REDIS_URL');
    return undefined;
  }
  const url = new URL(v.REDIS_URL);
  // ioredis copies every query parameter into its options, over the explicit ones: ?tls= would
  // silently turn TLS off (or swap the CA for a bundled one) while /readyz still says TLS.
  const extra = [...new Set(url.searchParams.keys())].filter((k) => !REDIS_URL_PARAMS.has(k));
  if (extra.length > 0) {
    problems.push(
      `REDIS_URL: ${extra.join(', ')} not supported in the URL (TLS comes from rediss:// and SOTTO_REDIS_CA_FILE)`,
    );
  }
  const tls = url.protocol === 'rediss:';
  if (!tls && caFile !== undefined) {
    problems.push('SOTTO_REDIS_CA_FILE: set, but REDIS_URL is redis:// (use rediss:// for TLS)');
  }
  if (v.SOTTO_ENV === 'production' && !tls && !v.SOTTO_REDIS_ALLOW_PLAINTEXT && !isLocalHost(url.hostname)) {
    problems.push(
      `REDIS_URL: ${url.hostname} is not on this machine: use rediss:// (and SOTTO_REDIS_CA_FILE for a private CA), or SOTTO_REDIS_ALLOW_PLAINTEXT=true for a network you trust`,
    );
  }
  if (!tls) return undefined;
  return { ca: caFile !== undefined ? readCa('SOTTO_REDIS_CA_FILE', caFile, problems) : undefined };
}
