import { readdirSync, readlinkSync } from 'node:fs';
import * as tls from 'node:tls';

/**
 * A hostile HTTP/1.1 client on a raw TLS socket: it writes exactly the bytes it is given, when it
 * is told to (slowly, partially, never), and records every byte the server answers and when the
 * server closes. For the attacks no well-behaved client library would make.
 */
export interface RawConn {
  socket: tls.TLSSocket;
  /** Everything received so far, as latin1 text. */
  received(): string;
  /** Settles when the socket is closed (by either side), with how long after connecting. */
  closed: Promise<number>;
  isClosed(): boolean;
  write(bytes: Buffer | string): void;
  /** Resolves with everything received once `done(text)` holds; rejects after `timeoutMs`. */
  until(done: (text: string) => boolean, timeoutMs: number): Promise<string>;
  destroy(): void;
}

export function rawTls(port: number): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let text = '';
    let closedFlag = false;
    const waiters = new Set<() => void>();
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      rejectUnauthorized: false,
    });
    const closed = new Promise<number>((res) =>
      socket.on('close', () => {
        closedFlag = true;
        res(Date.now() - started);
        for (const w of [...waiters]) w();
      }),
    );
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (const w of [...waiters]) w();
    });
    // Resets are expected (the server closes on stalled clients); the test looks at `closed`.
    socket.on('error', () => undefined);
    socket.once('secureConnect', () =>
      resolve({
        socket,
        received: () => text,
        closed,
        isClosed: () => closedFlag,
        write: (bytes) => {
          if (!socket.destroyed) socket.write(bytes);
        },
        until: (done, timeoutMs) =>
          new Promise((res, rej) => {
            const check = () => {
              if (done(text)) {
                finish();
                res(text);
              } else if (closedFlag) {
                finish();
                rej(
                  new Error(
                    `closed before the expected answer; received: ${JSON.stringify(text.slice(0, 300))}`,
                  ),
                );
              }
            };
            const timer = setTimeout(() => {
              finish();
              rej(
                new Error(
                  `no expected answer in ${timeoutMs} ms; received: ${JSON.stringify(text.slice(0, 300))}`,
                ),
              );
            }, timeoutMs);
            const finish = () => {
              clearTimeout(timer);
              waiters.delete(check);
            };
            waiters.add(check);
            check();
          }),
        destroy: () => socket.destroy(),
      }),
    );
    socket.once('error', reject);
  });
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The first HTTP response in `text` (headers lower-cased; the body by Content-Length). */
export function firstAnswer(text: string): RawAnswer {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0),
    headers,
    body: Buffer.from(text.slice(end + 4), 'latin1')
      .subarray(0, length)
      .toString('utf8'),
  };
}

/** True once `text` holds a whole first response (head and Content-Length body). */
export function hasAnswer(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
  return Buffer.byteLength(text.slice(end + 4), 'latin1') >= length;
}

/** How many file descriptors of this process (the server runs in it) point into `dir`. */
export function openFilesUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
