import { X509Certificate, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';

/**
 * TLS material: the operator's certificate files, or a self-signed certificate generated once
 * into the data directory (private key 0600) and reused until it nears expiry or stops covering
 * the configured host names.
 */
export interface TlsMaterial {
  cert: string;
  key: string;
}

export interface SelfSignedResult extends TlsMaterial {
  certFile: string;
  keyFile: string;
  generated: boolean;
  fingerprint: string;
}

const VALIDITY_DAYS = 365;
const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;

export function readTlsFiles(certFile: string, keyFile: string): TlsMaterial {
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

function covers(cert: X509Certificate, host: string): boolean {
  return isIP(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

function stillUsable(certPem: string, hosts: readonly string[], now: Date): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const renewAt = new Date(cert.validTo).getTime() - RENEW_BEFORE_DAYS * DAY_MS;
    return renewAt > now.getTime() && hosts.every((h) => covers(cert, h));
  } catch {
    return false;
  }
}

function writeAtomically(file: string, content: string, mode: number): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, content, { mode, flag: 'wx' });
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Host names the generated certificate names: always localhost and loopback, plus `extraHosts`. */
export function certificateHosts(extraHosts: readonly string[]): string[] {
  const hosts = ['localhost', '127.0.0.1', '::1', ...extraHosts.map((h) => h.replace(/^\[|\]$/g, ''))];
  return [...new Set(hosts.filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::'))];
}

export async function ensureSelfSignedCert(
  dir: string,
  extraHosts: readonly string[],
  now: Date = new Date(),
): Promise<SelfSignedResult> {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const hosts = certificateHosts(extraHosts);
  if (existsSync(certFile) && existsSync(keyFile)) {
    const existing = readTlsFiles(certFile, keyFile);
    if (stillUsable(existing.cert, hosts, now)) {
      // Tighten permissions an operator may have loosened by copying the directory around.
      chmodSync(keyFile, 0o600);
      const fingerprint = new X509Certificate(existing.cert).fingerprint256;
      return { ...existing, certFile, keyFile, generated: false, fingerprint };
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const cn = hosts.find((h) => !isIP(h) && h !== 'localhost') ?? 'localhost';
  const pems = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + VALIDITY_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: hosts.map((h) => (isIP(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h })),
      },
    ],
  });
  writeAtomically(keyFile, pems.private, 0o600);
  writeAtomically(certFile, pems.cert, 0o644);
  const fingerprint = new X509Certificate(pems.cert).fingerprint256;
  return { cert: pems.cert, key: pems.private, certFile, keyFile, generated: true, fingerprint };
}
