/**
 * Sends the fuzzer's hostile requests to a running server over HTTPS and tallies what came back.
 * Shared by bench/fuzz.ts (the long run) and test/fuzz-smoke.spec.ts (a small one in the suite).
 */
import { readdirSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import {
  multipartRequest,
  requestFor,
  rng,
  upgradeRequest,
  type FuzzRequest,
  type Identities,
  type Operation,
} from './fuzz-cases.js';

export interface FuzzOptions {
  port: number;
  operations: Operation[];
  /** Current identities; the runner asks again now and then (a fuzzed logout ends a session). */
  identities: () => Identities;
  refreshIdentities: () => Promise<void>;
  requests: number;
  seconds: number;
  concurrency?: number;
  seed?: number;
  /** A request without an answer after this long counts as hung. */
  clientTimeoutMs?: number;
  /** Slow clients to run beside the requests (each holds a connection until the server ends it). */
  slowClients?: number;
  /** Restrict the mix to one family (replaying a finding). */
  only?: 'json' | 'multipart' | 'upgrade' | undefined;
}

export interface Finding {
  method: string;
  path: string;
  kind: string;
  status: number | 'hung';
  detail: string;
}

export interface ResourceSample {
  rssMb: number;
  heapMb: number;
  fds: number;
}

export interface FuzzResult {
  total: number;
  byClass: Record<string, number>;
  byKind: Record<string, number>;
  serverErrors: Finding[];
  hung: Finding[];
  /** Connections the server closed or reset without an answer (oversized bodies, bad upgrades). */
  closedWithoutAnswer: number;
  /** Those, by the client's error code and what was sent (to tell a refused 2 MB body from a crash). */
  closedBy: Record<string, number>;
  slowClients: { sent: number; endedByServer: number; hung: number };
  seconds: number;
  start: ResourceSample;
  end: ResourceSample;
}

export function sampleResources(): ResourceSample {
  const m = process.memoryUsage();
  let fds = -1;
  try {
    fds = readdirSync('/proc/self/fd').length;
  } catch {
    // Not Linux: no descriptor count.
  }
  return { rssMb: Math.round(m.rss / 1048576), heapMb: Math.round(m.heapUsed / 1048576), fds };
}

const GUARDED = Symbol('fuzz-socket-guarded');
/**
 * Node's client can leave a keep-alive socket without an error listener when the server answered
 * (413, 401…) before the request body was written and then closed: the late write's ECONNRESET
 * would crash this process. The client's socket, not the server's: a no-op listener per socket.
 */
function guardSocket(socket: NodeJS.EventEmitter & { [GUARDED]?: true }): void {
  if (socket[GUARDED]) return;
  socket[GUARDED] = true;
  socket.on('error', () => undefined);
}

type Outcome = { status: number } | { hung: true } | { closed: string };

function send(agent: https.Agent, port: number, req: FuzzRequest, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Outcome) => {
      if (!done) {
        done = true;
        resolve(o);
      }
    };
    let r: ReturnType<typeof https.request>;
    try {
      r = https.request(
        {
          host: '127.0.0.1',
          port,
          method: req.method,
          path: req.path,
          headers: { ...req.headers, ...(req.body ? { 'content-length': String(req.body.length) } : {}) },
          agent,
          rejectUnauthorized: false,
        },
        (res) => {
          res.resume();
          res.on('end', () => finish({ status: res.statusCode ?? 0 }));
          res.on('error', () => finish({ status: res.statusCode ?? 0 }));
        },
      );
    } catch (err) {
      // node refuses to send some headers (invalid characters): not the server's doing.
      finish({ closed: `client refused: ${(err as Error).message.slice(0, 60)}` });
      return;
    }
    r.on('socket', guardSocket);
    r.setTimeout(timeoutMs, () => {
      finish({ hung: true });
      r.destroy();
    });
    r.on('error', (err) => finish({ closed: (err as NodeJS.ErrnoException).code ?? err.message }));
    r.end(req.body);
  });
}

/** Raw TLS: an upgrade request, read up to the status line. */
function sendRaw(port: number, req: FuzzRequest, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let buf = '';
    const timer = setTimeout(() => finish({ hung: true }), timeoutMs);
    let done = false;
    function finish(o: Outcome) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    }
    socket.on('secureConnect', () => {
      const lines = [`${req.method} ${req.path} HTTP/1.1`, 'host: localhost'];
      for (const [k, v] of Object.entries(req.headers)) lines.push(`${k}: ${v}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) finish({ status: Number(m[1]) });
    });
    socket.on('error', (err) => finish({ closed: (err as NodeJS.ErrnoException).code ?? 'error' }));
    socket.on('close', () => finish({ closed: 'closed' }));
  });
}

/**
 * A slow client: a body announced and never finished. The server's deadlines must end it (an
 * answer or a close) before `timeoutMs`; one still open then counts as hung.
 */
function slowClient(port: number, token: string, timeoutMs: number): Promise<'ended' | 'hung'> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('hung');
    }, timeoutMs);
    const end = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('ended');
    };
    socket.on('secureConnect', () => {
      socket.write(
        `PATCH /api/v1/org/settings HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${token}\r\n` +
          'content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"vocabulary":["',
      );
    });
    socket.on('data', end);
    socket.on('close', end);
    socket.on('error', end);
  });
}

function summary(req: FuzzRequest): string {
  const body = req.body ? ` body(${req.body.length} B): ${req.body.subarray(0, 120).toString('utf8')}` : '';
  return `${req.kind};${body}`.replace(/\s+/g, ' ').slice(0, 300);
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const r = rng(opts.seed ?? 1);
  const timeoutMs = opts.clientTimeoutMs ?? 15_000;
  const agent = new https.Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 8 });
  const start = sampleResources();
  const began = Date.now();
  const deadline = began + opts.seconds * 1000;
  const result: FuzzResult = {
    total: 0,
    byClass: {},
    byKind: {},
    serverErrors: [],
    hung: [],
    closedWithoutAnswer: 0,
    closedBy: {},
    slowClients: { sent: 0, endedByServer: 0, hung: 0 },
    seconds: 0,
    start,
    end: start,
  };
  const slow: Promise<void>[] = [];
  for (let i = 0; i < (opts.slowClients ?? 0); i++) {
    result.slowClients.sent++;
    slow.push(
      slowClient(opts.port, opts.identities().tokens.ownerA, timeoutMs * 4).then((o) => {
        if (o === 'ended') result.slowClients.endedByServer++;
        else result.slowClients.hung++;
      }),
    );
  }

  let issued = 0;
  let refreshing: Promise<void> | undefined;
  const next = (): FuzzRequest | undefined => {
    if (issued >= opts.requests || Date.now() > deadline) return undefined;
    issued++;
    const ids = opts.identities();
    const roll = r();
    if (opts.only === 'multipart' || (!opts.only && roll < 0.04)) return multipartRequest(r, ids);
    if (opts.only === 'upgrade' || (!opts.only && roll < 0.08)) return upgradeRequest(r, ids);
    return requestFor(opts.operations[Math.floor(r() * opts.operations.length)]!, r, ids);
  };
  const worker = async () => {
    for (let req = next(); req; req = next()) {
      const raw = req.headers.upgrade !== undefined;
      const outcome = raw
        ? await sendRaw(opts.port, req, timeoutMs)
        : await send(agent, opts.port, req, timeoutMs);
      result.total++;
      const kindKey = req.kind.startsWith('multipart')
        ? 'multipart'
        : raw
          ? 'websocket upgrade'
          : 'json/query/path';
      result.byKind[kindKey] = (result.byKind[kindKey] ?? 0) + 1;
      const route = req.path.split('?')[0]!.slice(0, 120);
      if ('status' in outcome) {
        const cls = `${Math.floor(outcome.status / 100)}xx`;
        result.byClass[cls] = (result.byClass[cls] ?? 0) + 1;
        if (outcome.status >= 500)
          result.serverErrors.push({
            method: req.method,
            path: route,
            kind: req.kind,
            status: outcome.status,
            detail: summary(req),
          });
      } else if ('hung' in outcome) {
        result.hung.push({
          method: req.method,
          path: route,
          kind: req.kind,
          status: 'hung',
          detail: summary(req),
        });
      } else {
        result.closedWithoutAnswer++;
        const why = `${outcome.closed} (${kindKey}${req.body && req.body.length > 1e6 ? ', body > 1 MB' : ''})`;
        result.closedBy[why] = (result.closedBy[why] ?? 0) + 1;
      }
      // Fuzzed logouts, revocations and member removals end the fuzzer's own sessions: renew them.
      if (result.total % 250 === 0 && !refreshing) {
        refreshing = opts.refreshIdentities().finally(() => (refreshing = undefined));
        await refreshing;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  await Promise.all(slow);
  agent.destroy();
  result.seconds = (Date.now() - began) / 1000;
  // Let sockets the server closed drain before counting descriptors.
  await new Promise((res) => setTimeout(res, 500));
  result.end = sampleResources();
  return result;
}

export function formatReport(res: FuzzResult, meta: Record<string, string>): string {
  const lines = [
    ...Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`),
    `- requests: ${res.total} in ${res.seconds.toFixed(0)} s (${(res.total / res.seconds).toFixed(0)}/s)`,
    `- by kind: ${Object.entries(res.byKind)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `- responses by class: ${Object.entries(res.byClass)
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `- closed by the server without an answer: ${res.closedWithoutAnswer}${
      res.closedWithoutAnswer
        ? ` (${Object.entries(res.closedBy)
            .map(([k, v]) => `${k}: ${v}`)
            .join('; ')})`
        : ''
    }`,
    `- responses ≥ 500: ${res.serverErrors.length}`,
    `- hung (no answer within the client timeout): ${res.hung.length}`,
    `- slow clients: ${res.slowClients.sent} sent, ${res.slowClients.endedByServer} ended by the server, ${res.slowClients.hung} still open at the limit`,
    `- RSS: ${res.start.rssMb} MB → ${res.end.rssMb} MB; heap ${res.start.heapMb} → ${res.end.heapMb} MB; open fds: ${res.start.fds} → ${res.end.fds}`,
  ];
  for (const f of [...res.serverErrors, ...res.hung].slice(0, 50))
    lines.push(`  - ${f.status} ${f.method} ${f.path} — ${f.detail}`);
  return lines.join('\n');
}
