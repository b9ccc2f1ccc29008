import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { hasRedisServer } from './redis-server.js';

/**
 * Throwaway PostgreSQL and Redis servers that speak only TLS, for the backend-TLS spec: a cluster
 * made with Debian's initdb in a temp dir and a redis-server with --tls-port, each on a free port,
 * with certificates made here by the openssl CLI. Never the machine's shared servers.
 */

function newestPostgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter(
      (v) =>
        existsSync(path.join(root, v, 'bin', 'postgres')) && existsSync(path.join(root, v, 'bin', 'initdb')),
    )
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

const postgresBin = newestPostgresBin();
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

/** initdb refuses root: as root the cluster runs as the `postgres` system user. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Why the spec cannot run here, or undefined when it can. */
export function tlsBackendsMissing(): string | undefined {
  if (!hasOpenssl) return 'the openssl CLI is not installed';
  if (!postgresBin)
    return 'no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)';
  if (process.getuid?.() === 0 && !postgresUser())
    return 'running as root without a postgres system user for initdb';
  // Debian's redis-server is built with TLS; one built without it fails to start, loudly.
  if (!hasRedisServer) return 'redis-server is not installed (apt-get install redis-server)';
  return undefined;
}

export interface TestPki {
  dir: string;
  /** The CA that signed the servers' certificate. */
  caFile: string;
  /** Another CA, which signed nothing the servers present. */
  otherCaFile: string;
  certFile: string;
  keyFile: string;
}

const openssl = (cwd: string, args: string[]) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

/** A CA, a second unrelated CA, and a server certificate for DNS:localhost only (not 127.0.0.1). */
export function makePki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const name of ['ca', 'other-ca']) {
    openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=sotto test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  ]);
  chmodSync(path.join(dir, 'server.key'), 0o600);
  return {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    otherCaFile: path.join(dir, 'other-ca.crt'),
    certFile: path.join(dir, 'server.crt'),
    keyFile: path.join(dir, 'server.key'),
  };
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}\n${out}`));
    });
  });
}

export interface TlsServer {
  port: number;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await gone;
}

/**
 * A PostgreSQL cluster in `dir` that accepts TCP only over TLS (hostssl lines only), as the
 * superuser `postgres` without a password (trust: the test is about the channel, not the login).
 */
export async function startTlsPostgres(pki: TestPki): Promise<TlsServer> {
  const bin = postgresBin!;
  const owner = postgresUser();
  // Its own temp dir, owned by the user the cluster runs as (a root-only parent would lock it out).
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-pg-tls-'));
  const data = path.join(dir, 'pgdata');
  const sock = path.join(dir, 'sock');
  mkdirSync(sock, { recursive: true });
  // PostgreSQL wants its key file private to the user it runs as.
  const serverKey = path.join(dir, 'server.key');
  const serverCert = path.join(dir, 'server.crt');
  copyFileSync(pki.keyFile, serverKey);
  copyFileSync(pki.certFile, serverCert);
  chmodSync(serverKey, 0o600);
  if (owner) {
    for (const p of [dir, sock, serverKey, serverCert]) chownSync(p, owner.uid, owner.gid);
  }
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  try {
    execFileSync(
      path.join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      {
        stdio: 'pipe',
        ...as,
      },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  writeFileSync(
    path.join(data, 'pg_hba.conf'),
    'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n',
  );
  if (owner) chownSync(path.join(data, 'pg_hba.conf'), owner.uid, owner.gid);
  const port = await freePort();
  const child = spawn(
    path.join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      sock,
      '-c',
      'listen_addresses=localhost',
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${serverCert}`,
      '-c',
      `ssl_key_file=${serverKey}`,
      '-c',
      'fsync=off',
      '-c',
      'max_connections=40',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], ...as },
  );
  try {
    await waitForLine(child, /ready to accept connections/, 'postgres');
  } catch (err) {
    // A cluster that did not come up leaves neither a process nor its directory behind.
    await stopChild(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    stop: async () => {
      await stopChild(child, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server with a TLS port only (no plaintext port), no client certificates asked. */
export async function startTlsRedis(pki: TestPki): Promise<TlsServer> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '-::1',
      '--tls-cert-file',
      pki.certFile,
      '--tls-key-file',
      pki.keyFile,
      '--tls-ca-cert-file',
      pki.caFile,
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    await waitForLine(child, /Ready to accept connections/, 'redis-server');
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  return { port, stop: () => stopChild(child, 'SIGKILL') };
}
