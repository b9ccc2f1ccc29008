import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/ports.js';
import { cpuSeconds, rssBytes } from './proc-stats.js';

/**
 * A real TLS-terminating proxy for bench/fanout.ts `--nginx`: one nginx (Debian's nginx-light)
 * with a TLS 1.3 server per node, configured as docs/deployment.md shows (forwarded headers,
 * WebSocket upgrade, nginx's default 60 s read timeout, which Sotto's 20 s keepalive pings stay
 * within while viewers wait idle), in a temporary prefix with a
 * throw-away self-signed certificate. Two worker processes, the listening sockets shared between
 * them by the kernel (`reuseport`): every viewer holds two descriptors in nginx (its own and the
 * upstream's), 20,000 for 10,000 viewers, which is this machine's per-process limit. The proxy
 * shares the machine's two cores with the nodes and the clients: its CPU is printed.
 */
export interface Nginx {
  /** The client-facing port of each upstream, in order. */
  ports: number[];
  /** RSS of the worker processes together (bytes). */
  rss(): number;
  /** CPU seconds of the worker processes together so far. */
  cpu(): number;
  /** nginx's own complaints so far (its error log, warnings and worse), counted by message. */
  problems(): Map<string, number>;
  stop(): Promise<void>;
}

const workers = (master: number): number[] =>
  readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);

export async function startNginx(upstreams: number[]): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-fanout-nginx-'));
  // The worker runs as nobody and writes its temp paths here.
  chmodSync(dir, 0o777);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=sotto.test',
      '-days',
      '1',
      '-keyout',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const ports = await Promise.all(upstreams.map(() => freePort()));
  const servers = upstreams.map(
    (upstream, i) => `
  server {
    listen 127.0.0.1:${ports[i]} ssl reuseport;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://127.0.0.1:${upstream};
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }`,
  );
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 15000; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
${servers.join('\n')}
}
`,
  );
  const child: ChildProcess = spawn(
    'sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec nginx -p "$0" -c "$1" -e "$0/error.log"', dir, conf],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  // Up once every port accepts a connection.
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null)
      throw new Error(`nginx exited: ${err}${readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
    // Probed by connecting, not by binding: a probe that bound the port while nginx started
    // could take it from nginx for that moment and make it fail with EADDRINUSE.
    const up = await Promise.all(
      ports.map(
        (port) =>
          new Promise<boolean>((resolve) => {
            const s = connect(port, '127.0.0.1');
            s.once('connect', () => (s.destroy(), resolve(true)));
            s.once('error', () => resolve(false));
          }),
      ),
    );
    if (up.every(Boolean) && workers(child.pid!).length > 0) break;
    if (tries > 100) throw new Error('nginx did not start');
    await sleep(100);
  }
  const pids = () => workers(child.pid!);
  return {
    ports,
    rss: () => pids().reduce((a, p) => a + rssBytes(p), 0),
    cpu: () => pids().reduce((a, p) => a + cpuSeconds(p), 0),
    problems: () => {
      const counted = new Map<string, number>();
      for (const line of readFileSync(path.join(dir, 'error.log'), 'utf8').split('\n')) {
        // "2026/12/07 20:00:00 [error] 123#123: *45 what happened, client: …": the what.
        const what = /\[(?:warn|error|crit|alert|emerg)\] \d+#\d+: (?:\*\d+ )?([^,]*)/.exec(line)?.[1];
        if (what) counted.set(what, (counted.get(what) ?? 0) + 1);
      }
      return counted;
    },
    stop: async () => {
      const closed = new Promise((r) => child.once('close', r));
      child.kill('SIGQUIT');
      await Promise.race([closed, sleep(10_000).then(() => child.kill('SIGKILL'))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Why `--nginx` cannot run here, or undefined. */
export function nginxMissing(): string | undefined {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'nginx is not installed (apt-get install nginx-light)';
  }
}
