/**
 * Live fan-out: N authenticated viewers on one live recording streamed in real time, on one
 * `sotto serve` process and across two (viewers split evenly, the capture client on the first,
 * events crossing through Redis). Per run it prints:
 *   - set-up: from the first ticket request to the last viewer's `ready` (each viewer does what
 *     the panel does: POST /recordings/:id/live-ticket with its own session, then the WebSocket
 *     with that ticket);
 *   - delivery delay p50 / p95 / max over every (event, viewer): arrival at the viewer − the
 *     moment the event was published (Redis PUBLISH, seen by a subscriber in this process);
 *   - server RSS per idle viewer above the baseline (RSS with every viewer connected and idle,
 *     minus RSS before the first one), per node; and the same after a full garbage collection,
 *     RSS and V8 heap used (each node runs with the inspector on 127.0.0.1, which the bench asks
 *     for the collection and for `process.memoryUsage()`): what the node keeps per viewer, without
 *     the set-up's garbage (ticket requests, handshakes) that an idle node has not collected yet;
 *   - server CPU while streaming, errors (handshakes refused, events missing, abnormal closes).
 * Numbers for the README, never pass/fail.
 *
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench:fanout               # 100, 1000, 10000
 *   … npm run bench:fanout -- 1000 --nodes 2 --seconds 30
 *   BENCH_VIEWERS=100,1000 BENCH_NODES=1 … npm run bench:fanout
 *   … npm run bench:fanout -- 1000 --nodes 1 --proxy        # plain HTTP behind a TLS proxy
 *   … npm run bench:fanout -- 1000 --nodes 1 --proxy --heap # + heap snapshots, heap per viewer
 *   … npm run bench:fanout -- 10000 --nodes 1 --nginx       # behind a real nginx (TLS 1.3)
 *
 * `--proxy` (BENCH_PROXY=1): the nodes run behind a TLS-terminating proxy (SOTTO_TRUST_PROXY =
 * 127.0.0.1: plain HTTP), and every client sends what such a proxy adds (`X-Forwarded-Proto:
 * https`); what a node then holds per viewer is without the TLS connection's state, which is the
 * proxy's. `--heap` (BENCH_HEAP=1): a heap snapshot of each node before the first viewer and once
 * they are all idle (after the memory is read), and the kinds of objects that grew most per viewer
 * (bench/heap-summary.ts); the snapshots stay in the directory printed. The snapshot before the
 * viewers takes memory of its own, so the RSS columns are then marked as not comparable.
 * `--nginx` (BENCH_NGINX=1; Debian's nginx-light): the same, with a real proxy in between — one
 * nginx (two worker processes, on this machine's cores too) terminating TLS 1.3 for each node, set
 * up as docs/deployment.md says; the clients speak TLS to it and send no forwarded headers of
 * their own. Its RSS per viewer and CPU are printed under the table.
 *
 * Every viewer is a distinct admin user with its own session (the worst case for the periodic
 * re-check of rights, which runs per session). Viewers run in child processes
 * (bench/fanout-viewers.ts), ≤ 2,500 each, so the bench does not read frames slower than the
 * server writes them; the machine's open-file limit caps N (said in the output).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pLimit from 'p-limit';
import WebSocket from 'ws';
import { corpusIds, hasCorpus, noCorpusReason } from '../test/helpers/corpus.js';
import { readCorpusMono } from '../test/helpers/corpus-audio.js';
import { addUser, createOrgWithUser } from '../test/helpers/fixtures.js';
import { instanceFactory } from '../test/helpers/live-instances.js';
import { frames } from '../test/helpers/live.js';
import { recordingEnv } from '../test/helpers/recordings.js';
import { freshDatabase, testMasterKey } from '../test/helpers/test-app.js';
import type { OpenOrder, Opened, ReportOrder, Result } from './fanout-viewers.js';
import { growth, printGrowth, summarise } from './heap-summary.js';
import { nginxMissing, startNginx, type Nginx } from './fanout-nginx.js';
import { cpuSeconds, rssBytes } from './proc-stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.resolve(HERE, '..', 'src', 'cli', 'main.ts');
const VIEWER_PROCESS = path.join(HERE, 'fanout-viewers.ts');
const PER_PROCESS = 2500;
/** The nodes' log lines, appended (one file per bench run). */
const LOG = path.join(tmpdir(), `sotto-fanout-${process.pid}.log`);
/** Server settings the bench changes, printed with the results (every one a documented variable). */
const SERVER_SETTINGS: Record<string, string> = {
  // Every ticket request and handshake comes from 127.0.0.1: the per-network budget would refuse them.
  SOTTO_RATE_LIMIT_API_PER_MINUTE: '1000000',
};

/** Options without a value. */
const FLAGS = new Set(['--proxy', '--heap', '--nginx']);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const flag = (name: string, env: string) =>
  process.argv.includes(`--${name}`) || ['1', 'true'].includes(process.env[env] ?? '');
const NGINX = flag('nginx', 'BENCH_NGINX');
/** The nodes trust a proxy on 127.0.0.1 (plain HTTP). */
const PROXIED = flag('proxy', 'BENCH_PROXY') || NGINX;
const HEAP = flag('heap', 'BENCH_HEAP');
/** The clients speak TLS: to the nodes themselves, or to nginx in front of them. */
const CLIENT_TLS = !PROXIED || NGINX;
/** What a TLS-terminating proxy adds to every request it forwards, sent by the clients themselves when no proxy runs. */
const FORWARDED: Record<string, string> = CLIENT_TLS ? {} : { 'x-forwarded-proto': 'https' };

function sizes(): number[] {
  const positional = process.argv
    .slice(2)
    .filter((a, i, all) => !a.startsWith('--') && !(all[i - 1]?.startsWith('--') && !FLAGS.has(all[i - 1]!)));
  const list = positional.length > 0 ? positional.join(',') : (process.env.BENCH_VIEWERS ?? '100,1000,10000');
  return list
    .split(',')
    .map((x) => Number(x.replace(/_/g, '')))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** The soft and hard open-file limits of this process (children inherit them; `sh` raises soft to hard). */
function fileLimits(): { soft: number; hard: number } {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line ?? '')
    .split(/\s+/)
    .slice(3, 5)
    .map((x) => (x === 'unlimited' ? Infinity : Number(x)));
  return { soft: soft ?? 1024, hard: hard ?? 1024 };
}

const now = () => performance.timeOrigin + performance.now();
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

interface Node {
  child: ChildProcess;
  port: number;
  /** Where clients connect: the node itself, or its nginx server (NGINX). */
  front: number;
  /** Where its heap snapshots go (HEAP). */
  snapshots: string | undefined;
  /** Its inspector's WebSocket URL (127.0.0.1, a free port). */
  inspector: string;
  /** Warning and error messages of the node (the `msg` only), counted. */
  warnings: Map<string, number>;
}

/** `sotto serve` as a child, its open-file limit raised to the hard limit; resolved once it listens. */
function serve(env: Record<string, string>): Promise<Node> {
  const snapshots = HEAP ? mkdtempSync(path.join(tmpdir(), 'sotto-fanout-heap-')) : undefined;
  const heapFlags = [
    '--inspect=127.0.0.1:0',
    ...(snapshots ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`] : []),
  ];
  const child = spawn(
    'sh',
    [
      '-c',
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      'sh',
      process.execPath,
      ...heapFlags,
      '--import',
      'tsx',
      MAIN,
      'serve',
    ],
    {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let started = false;
  const node: Node = { child, port: 0, front: 0, snapshots, inspector: '', warnings: new Map() };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start\n${out.slice(-2000)}`)), 300_000);
    child.stderr!.on('data', (c: Buffer) => {
      if (started) return;
      out += c.toString();
      node.inspector ||= /Debugger listening on (ws:\/\/\S+)/.exec(out)?.[1] ?? '';
    });
    child.stdout!.on('data', (c: Buffer) => {
      const text = c.toString();
      // Kept for a look afterwards (no secrets: the server never logs tokens or transcript text).
      appendFileSync(LOG, text);
      // Afterwards only counted (warnings and errors); nothing of it is printed.
      for (const m of text.matchAll(/"level":[45]0,.*?"msg":"([^"]*)"/g))
        node.warnings.set(m[1]!, (node.warnings.get(m[1]!) ?? 0) + 1);
      if (started) return;
      out += text;
      const listening = /"address":"https?:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
      if (listening && out.includes('"msg":"sotto started"')) {
        started = true;
        clearTimeout(timer);
        node.port = node.front = Number(listening[1]);
        resolve(node);
      }
    });
    child.on('close', (code) => reject(new Error(`serve exited with ${code}\n${out.slice(-2000)}`)));
  });
}

interface Memory {
  rss: number;
  heapUsed: number;
}

/** The node's memory after a full garbage collection, asked through its inspector. */
async function collectedMemory(n: Node): Promise<Memory> {
  const ws = new WebSocket(n.inspector);
  await new Promise((res, rej) => ws.once('open', res).once('error', rej));
  let next = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<{ result?: { result?: { value?: string } } }>((resolve, reject) => {
      const id = ++next;
      const on = (data: WebSocket.RawData) => {
        const m = JSON.parse(String(data)) as { id?: number; error?: { message: string } };
        if (m.id !== id) return;
        ws.off('message', on);
        if (m.error) reject(new Error(`${method}: ${m.error.message}`));
        else resolve(m as { result?: { result?: { value?: string } } });
      };
      ws.on('message', on);
      ws.send(JSON.stringify({ id, method, params }));
    });
  try {
    // Twice: objects with finalizers (sockets' handles) are freed by the second.
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const r = await call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    const m = JSON.parse(r.result?.result?.value ?? '{}') as { heapUsed: number };
    // RSS from /proc, as for the other column (memoryUsage's is the same number).
    return { rss: rssBytes(n.child.pid!), heapUsed: m.heapUsed };
  } finally {
    ws.close();
  }
}

/** Has the node write a heap snapshot (HEAP); resolves with its file once written whole. */
async function heapSnapshot(n: Node): Promise<string> {
  const before = new Set(readdirSync(n.snapshots!));
  n.child.kill('SIGUSR2');
  let last = -1;
  for (;;) {
    await sleep(1000);
    const file = readdirSync(n.snapshots!).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    const size = statSync(path.join(n.snapshots!, file)).size;
    // Written synchronously by the node: the size stops changing once it is done.
    if (size > 0 && size === last) return path.join(n.snapshots!, file);
    last = size;
    await sleep(1000);
  }
}

async function stopNode(n: Node): Promise<void> {
  if (n.child.exitCode !== null) return;
  const closed = new Promise((res) => n.child.on('close', res));
  n.child.kill('SIGTERM');
  // Unref'd, as the time-out below: a pending guard must not keep the bench alive once it is done.
  await Promise.race([closed, sleep(30_000, undefined, { ref: false }).then(() => n.child.kill('SIGKILL'))]);
}

function post(
  port: number,
  urlPath: string,
  token: string,
  body: unknown,
): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = (CLIENT_TLS ? request : httpRequest)(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: urlPath,
        servername: 'sotto.test',
        rejectUnauthorized: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...FORWARDED,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** `seconds` of conversation (the corpus, one file after the other) as 100 ms frames. */
function audio(seconds: number): Buffer[] {
  const out: Buffer[] = [];
  while (out.length < seconds * 10) for (const id of corpusIds()) out.push(...frames(readCorpusMono(id).pcm));
  return out.slice(0, seconds * 10);
}

/** Streams in real time (frame n at start + n × 100 ms), then stops; resolves at `stopped`. */
async function capture(port: number, token: string, id: string, all: Buffer[]): Promise<void> {
  const ws = new WebSocket(
    `${CLIENT_TLS ? 'wss' : 'ws'}://127.0.0.1:${port}/api/v1/recordings/${id}/live`,
    [],
    {
      rejectUnauthorized: false,
      headers: { authorization: `Bearer ${token}`, ...FORWARDED },
    },
  );
  const stopped = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type: string }).type === 'stopped') resolve();
    });
    ws.on('close', (code) => (code === 1000 ? resolve() : reject(new Error(`capture closed with ${code}`))));
    ws.on('error', reject);
  });
  await new Promise((res, rej) => ws.once('open', res).once('error', rej));
  ws.send(JSON.stringify({ type: 'start', participant: 'Desk' }));
  const t0 = performance.now();
  for (let i = 0; i < all.length; i++) {
    const wait = t0 + i * 100 - performance.now();
    if (wait > 0) await sleep(wait);
    ws.send(all[i]!);
  }
  ws.send(JSON.stringify({ type: 'stop' }));
  await Promise.race([
    stopped,
    sleep(180_000, undefined, { ref: false }).then(() =>
      Promise.reject(new Error('no stopped within 3 min')),
    ),
  ]);
  ws.terminate();
}

interface Run {
  nodes: number;
  viewers: number;
  setupS: number;
  ready: number;
  p50: number;
  p95: number;
  max: number;
  rssPerViewer: number[];
  /** After a full garbage collection at both ends: RSS and V8 heap used per viewer, per node. */
  collectedPerViewer: Memory[];
  cpu: number[];
  events: number;
  errors: string[];
  loadBefore: string;
  loadAfter: string;
  /** NGINX: the proxy's RSS per idle viewer (its workers, no collection to force) and CPU while streaming. */
  proxy?: { rssPerViewer: number; cpu: number };
}

function quantiles(hist: Map<number, number>, total: number, qs: number[]): number[] {
  const sorted = [...hist].sort((a, b) => a[0] - b[0]);
  return qs.map((q) => {
    const target = Math.ceil(q * total);
    let seen = 0;
    for (const [bucket, count] of sorted) {
      seen += count;
      if (seen >= target) return (bucket + 0.5) * 0.1;
    }
    return NaN;
  });
}

function childMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`viewer process: no ${type} in ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`viewer process exited with ${code}`)));
  });
}

async function run(
  opts: { nodes: number; viewers: number; seconds: number },
  ctx: {
    shared: Record<string, string>;
    databaseUrl: string;
    tokens: () => Promise<{ owner: string; viewers: string[] }>;
    redis: Redis;
  },
): Promise<Run> {
  const loadBefore = load();
  const { owner, viewers: tokens } = await ctx.tokens();
  const env = {
    ...ctx.shared,
    SOTTO_ENV: 'production',
    SOTTO_HOST: '127.0.0.1',
    SOTTO_HTTPS_PORT: '0',
    SOTTO_HTTP_PORT: '0',
    SOTTO_PUBLIC_URL: 'https://sotto.test',
    DATABASE_URL: ctx.databaseUrl,
    REDIS_URL: process.env.REDIS_URL!,
    ...(PROXIED ? { SOTTO_TRUST_PROXY: '127.0.0.1' } : {}),
  };
  const nodes: Node[] = [];
  const children: ChildProcess[] = [];
  const errors: string[] = [];
  let proxy: Nginx | undefined;
  try {
    for (let i = 0; i < opts.nodes; i++) nodes.push(await serve(env));
    if (NGINX) {
      proxy = await startNginx(nodes.map((n) => n.port));
      nodes.forEach((n, i) => (n.front = proxy!.ports[i]!));
    }
    const created = await post(nodes[0]!.front, '/api/v1/recordings', owner, {
      mode: 'live',
      title: 'Fan-out bench',
    });
    if (created.status !== 201) throw new Error(`create live: ${created.status} ${created.body}`);
    const id = (JSON.parse(created.body) as { id: string }).id;

    // Publish times, by sequence number, from the Redis channel every node subscribes to.
    const published: (number | null)[] = [null];
    const sub = ctx.redis.duplicate();
    const channel = `${ctx.shared.SOTTO_REDIS_PREFIX}live:${id}`;
    sub.on('messageBuffer', (_ch: Buffer, message: Buffer) => {
      const at = now();
      const seq = Number(message.subarray(0, message.indexOf(0x3a)).toString('latin1'));
      if (Number.isSafeInteger(seq) && seq > 0) published[seq] = at;
    });
    await sub.subscribe(channel);

    const procs = Math.ceil(opts.viewers / PER_PROCESS);
    for (let i = 0; i < procs; i++)
      children.push(
        fork(VIEWER_PROCESS, [], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
    await sleep(3000); // the servers settle (warm-up queries, JIT) and the viewer processes load
    const baseline = nodes.map((n) => rssBytes(n.child.pid!));
    const proxyBaseline = proxy?.rss() ?? 0;
    const baseCollected = await Promise.all(nodes.map(collectedMemory));
    const baseSnapshots = HEAP ? await Promise.all(nodes.map(heapSnapshot)) : [];

    // Warnings from here on count as errors (the start-up ones are about the bench's set-up).
    for (const n of nodes) n.warnings.clear();
    const t0 = now();
    const opened = children.map((child, p) => {
      const mine = tokens
        .slice(0, opts.viewers)
        .flatMap((token, i) => (i % procs === p ? [{ token, port: nodes[i % opts.nodes]!.front }] : []));
      const order: OpenOrder = {
        type: 'open',
        recordingId: id,
        concurrency: 32,
        viewers: mine,
        proxied: !CLIENT_TLS,
      };
      child.send(order);
      return childMessage<Opened>(child, 'opened', 20 * 60_000);
    });
    const progress = new Map<ChildProcess, string>();
    for (const child of children)
      child.on('message', (m: { type: string; ready?: number; failed?: Record<string, number> }) => {
        if (m.type === 'progress') progress.set(child, `${m.ready} ready ${JSON.stringify(m.failed)}`);
      });
    const ticker = setInterval(
      () => console.error(`  set-up: ${[...progress.values()].join(' | ')}`),
      10_000,
    );
    const results = await Promise.all(opened).finally(() => clearInterval(ticker));
    const ready = results.reduce((a, r) => a + r.ready, 0);
    const setupS = (Math.max(...results.map((r) => r.lastReadyAt)) - t0) / 1000;
    for (const r of results) for (const [why, n] of Object.entries(r.failed)) errors.push(`${n} × ${why}`);

    await sleep(6000); // idle: a re-check period passes, allocation settles
    const idle = nodes.map((n) => rssBytes(n.child.pid!));
    const proxyIdle = proxy?.rss() ?? 0;
    const viewersOn = nodes.map((_n, i) => Math.ceil((ready - i) / opts.nodes));
    const rssPerViewer = idle.map((r, i) => (r - baseline[i]!) / Math.max(1, viewersOn[i]!));
    const idleCollected = await Promise.all(nodes.map(collectedMemory));
    const collectedPerViewer = idleCollected.map((m, i) => ({
      rss: (m.rss - baseCollected[i]!.rss) / Math.max(1, viewersOn[i]!),
      heapUsed: (m.heapUsed - baseCollected[i]!.heapUsed) / Math.max(1, viewersOn[i]!),
    }));
    if (HEAP) {
      const idleSnapshots = await Promise.all(nodes.map(heapSnapshot));
      nodes.forEach((n, i) =>
        printGrowth(
          growth(summarise(baseSnapshots[i]!), summarise(idleSnapshots[i]!), Math.max(1, viewersOn[i]!)),
          'viewer',
          ` (node ${i + 1}; snapshots in ${n.snapshots})`,
        ),
      );
    }

    const cpu0 = nodes.map((n) => cpuSeconds(n.child.pid!));
    const proxyCpu0 = proxy?.cpu() ?? 0;
    const s0 = performance.now();
    await capture(nodes[0]!.front, owner, id, audio(opts.seconds));
    const elapsed = (performance.now() - s0) / 1000;
    const cpu = nodes.map((n, i) => (cpuSeconds(n.child.pid!) - cpu0[i]!) / elapsed);
    const proxyCpu = proxy ? (proxy.cpu() - proxyCpu0) / elapsed : 0;
    await sleep(500); // the last events (`stopped`) reach every viewer
    await sub.quit();

    const report: ReportOrder = { type: 'report', published };
    const outcomes = await Promise.all(
      children.map((child) => {
        child.send(report);
        return childMessage<Result>(child, 'result', 120_000);
      }),
    );
    const hist = new Map<number, number>();
    let samples = 0;
    let max = 0;
    let missing = 0;
    let extra = 0;
    const closes: Record<string, number> = {};
    for (const o of outcomes) {
      for (const [b, c] of o.histogram) hist.set(b, (hist.get(b) ?? 0) + c);
      samples += o.samples;
      max = Math.max(max, o.max);
      missing += o.missing;
      extra += o.extra;
      for (const [code, n] of Object.entries(o.closes)) closes[code] = (closes[code] ?? 0) + n;
    }
    if (missing > 0) errors.push(`${missing} events missed`);
    if (extra > 0) errors.push(`${extra} events more than published`);
    for (const [code, n] of Object.entries(closes)) if (code !== '1000') errors.push(`${n} × closed ${code}`);
    for (const n of nodes) for (const [msg, count] of n.warnings) errors.push(`${count} × server: ${msg}`);
    for (const [msg, count] of proxy?.problems() ?? []) errors.push(`${count} × nginx: ${msg}`);
    const [p50, p95] = quantiles(hist, samples, [0.5, 0.95]);
    return {
      nodes: opts.nodes,
      viewers: opts.viewers,
      setupS,
      ready,
      p50: p50!,
      p95: p95!,
      max,
      rssPerViewer,
      collectedPerViewer,
      cpu,
      events: published.length - 1,
      errors,
      loadBefore,
      loadAfter: load(),
      ...(proxy
        ? { proxy: { rssPerViewer: (proxyIdle - proxyBaseline) / Math.max(1, ready), cpu: proxyCpu } }
        : {}),
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(nodes.map(stopNode));
    await proxy?.stop();
  }
}

function row(r: Run): string {
  const kib = (b: number) => `${(b / 1024).toFixed(1)}`;
  const ms = (x: number) => (Number.isNaN(x) ? '—' : x.toFixed(1));
  return (
    `| ${r.nodes} | ${r.viewers.toLocaleString('en')} | ${r.setupS.toFixed(1)} s | ${ms(r.p50)} / ${ms(r.p95)} / ${ms(r.max)} ms | ` +
    `${r.rssPerViewer.map(kib).join(' + ')} KiB${HEAP ? ' (not comparable: snapshots)' : ''} | ` +
    `${r.collectedPerViewer.map((m) => kib(m.rss)).join(' + ')} KiB${HEAP ? ' (idem)' : ''} | ` +
    `${r.collectedPerViewer.map((m) => kib(m.heapUsed)).join(' + ')} KiB | ${r.cpu.map((c) => `${Math.round(c * 100)}%`).join(' + ')} | ${r.events} | ` +
    `${r.errors.length ? r.errors.join('; ') : 'none'} | ${r.loadBefore} → ${r.loadAfter} |`
  );
}

async function main(): Promise<void> {
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL)
    throw new Error('needs DATABASE_URL (PostgreSQL: two processes share it) and REDIS_URL');
  if (!hasCorpus) throw new Error(noCorpusReason);
  if (NGINX && nginxMissing()) throw new Error(nginxMissing());
  const seconds = Number(arg('seconds') ?? process.env.BENCH_SECONDS ?? 30);
  const nodeCounts = (arg('nodes') ?? process.env.BENCH_NODES ?? '1,2').split(',').map(Number);
  const limits = fileLimits();
  // A node holds one descriptor per viewer plus its database, Redis and spool files.
  const cap = Math.min(limits.hard - 500, PER_PROCESS * 40);
  const wanted = sizes();
  const counts = wanted.map((n) => Math.min(n, cap));
  const { db, url, drop } = await freshDatabase();
  const data = recordingEnv();
  const shared = {
    ...data.env,
    ...SERVER_SETTINGS,
    SOTTO_MASTER_KEY: testMasterKey(),
    SOTTO_REDIS_PREFIX: `sotto-fanout-${randomUUID()}:`,
    SOTTO_LOG_LEVEL: 'info',
  };
  const redis = new Redis(process.env.REDIS_URL);
  const factory = instanceFactory(db, shared);
  try {
    // Users and sessions written straight to the database (no argon2); access tokens are issued
    // afresh before each run (they live SOTTO_ACCESS_TOKEN_TTL_SECONDS).
    const setup = await factory();
    const ownerUser = await createOrgWithUser(setup.services, { role: 'owner' });
    const limit = pLimit(8);
    const users = await Promise.all(
      Array.from({ length: Math.max(...counts) }, (_x, i) =>
        // An explicit address: the fixture's 8-hex default collides now and then among thousands.
        limit(() =>
          addUser(setup.services, ownerUser.orgId, {
            role: 'admin',
            email: `viewer-${i}-${randomUUID()}@example.test`,
          }),
        ),
      ),
    );
    await setup.close();
    const tokens = async () => {
      const t = await factory();
      try {
        const issue = (u: { userId: string; sessionId: string; orgId: string }) =>
          t.services.tokens.issue({ sub: u.userId, sid: u.sessionId, org: u.orgId });
        return { owner: await issue(ownerUser), viewers: await Promise.all(users.map(issue)) };
      } finally {
        await t.close();
      }
    };

    console.log(
      `# Live fan-out (${new Date().toISOString().slice(0, 10)}, ${process.arch}, Node ${process.versions.node}, ` +
        `PostgreSQL + Redis, sphinx, ${seconds} s of speech streamed in real time)\n`,
    );
    console.log(
      `transport: ${
        NGINX
          ? 'TLS 1.3 to nginx (two workers, same machine), plain HTTP from it to the nodes (SOTTO_TRUST_PROXY=127.0.0.1)'
          : PROXIED
            ? 'plain HTTP behind a TLS-terminating proxy (SOTTO_TRUST_PROXY=127.0.0.1; no proxy process: the clients send X-Forwarded-Proto)'
            : 'direct TLS 1.3'
      }`,
    );
    console.log(
      `server settings changed by the bench: ${Object.entries(SERVER_SETTINGS)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
    console.log(
      `open files: soft ${limits.soft}, hard ${limits.hard}` +
        (counts.some((c, i) => c < wanted[i]!) ? ` — N capped at ${cap}` : ''),
    );
    console.log(
      '\n| nodes | viewers | set-up | delay p50 / p95 / max | RSS per idle viewer | after GC: RSS | after GC: heap | server CPU | events | errors | load avg (1/5/15) before → after |',
    );
    console.log(
      '| ----- | ------- | ------ | --------------------- | ------------------- | ------------- | -------------- | ---------- | ------ | ------ | ------------------------------- |',
    );
    for (const nodes of nodeCounts)
      for (const viewers of counts) {
        console.error(`${nodes} node(s), ${viewers} viewers…`);
        try {
          const r = await run({ nodes, viewers, seconds }, { shared, databaseUrl: url!, tokens, redis });
          console.log(row(r));
          if (r.proxy)
            console.log(
              `|   | nginx in front: ${(r.proxy.rssPerViewer / 1024).toFixed(1)} KiB RSS per idle viewer, ${Math.round(r.proxy.cpu * 100)}% CPU while streaming |`,
            );
        } catch (err) {
          console.error(err);
          console.log(`| ${nodes} | ${viewers} | failed: ${(err as Error).message.split('\n')[0]} |`);
        }
      }
    console.log(
      '\ndelay = arrival at a viewer − Redis PUBLISH of the event (every partial and final, `stopping`, `stopped`), over every viewer;' +
        '\nRSS per idle viewer = (node RSS with every viewer connected and idle − before the first) / viewers on that node;' +
        '\nafter GC = the same difference, each end read after a full garbage collection: RSS, and V8 heap used;' +
        '\nserver CPU = CPU time of each node while streaming / wall time (100% = one core).',
    );
  } finally {
    const keys = await redis.keys(`${shared.SOTTO_REDIS_PREFIX}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    await drop();
    rmSync(data.dataDir, { recursive: true, force: true });
  }
}

await main();
