import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { S3Bucket } from '../../src/adapters/storage/s3-bucket.adapter.js';

/**
 * A real S3-compatible server for the object-storage specs: s3rver (the maintained @20minutes
 * fork, a devDependency), started in the test process on a random loopback port over a temp
 * folder, speaking the S3 REST API with SigV4 signatures (PUT, multipart upload, Range GET,
 * ListObjectsV2, HeadBucket). Sotto talks to it through the official AWS SDK exactly as it would
 * to AWS, MinIO or Ceph RGW. Child `sotto serve` processes reach it over TCP like any endpoint.
 */
interface KoaContext {
  path: string;
  mountPath?: string;
  state: { vhost?: boolean };
}
interface S3rverInstance {
  middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void> | void)[];
  run(): Promise<net.AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
  key?: string | Buffer;
  cert?: string | Buffer;
}) => S3rverInstance;

/** s3rver's built-in account (the only one it knows). */
export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';

export interface S3TestServer {
  endpoint: string;
  port: number;
  /** The SOTTO_STORAGE=s3 environment for a bucket (default: the first) and prefix. */
  env(opts?: { bucket?: string; prefix?: string }): Record<string, string>;
  /** Object keys (full, prefix included) under `prefix` in `bucket`. */
  keys(prefix?: string, bucket?: string): Promise<string[]>;
  /** An object's bytes; undefined when it does not exist. */
  read(key: string, bucket?: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export async function startS3Server(
  opts: { buckets?: string[]; tls?: { key: string; cert: string } } = {},
): Promise<S3TestServer> {
  const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverCtor;
  const directory = mkdtempSync(path.join(tmpdir(), 'sotto-s3-'));
  const buckets = opts.buckets ?? ['sotto-test'];
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory,
    silent: true,
    configureBuckets: buckets.map((name) => ({ name })),
    ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert } : {}),
  });
  // s3rver checks the SigV4 signature of a bucket-level request (HeadBucket, ListObjectsV2)
  // against "/bucket", while the AWS SDK sends and signs "/bucket/" (as S3 checks the path as
  // sent). Right after its vhost step, such a request gets s3rver's own virtual-host treatment,
  // whose canonical path is "/bucket" + mountPath: "/bucket/" again. Signatures stay verified.
  const vhost = server.middleware.findIndex((fn) => fn.name === 'vhost');
  if (vhost < 0) throw new Error('s3rver changed: no vhost middleware to follow');
  server.middleware.splice(vhost + 1, 0, (ctx, next) => {
    if (!ctx.state.vhost && /^\/[^/]+\/$/.test(ctx.path)) {
      ctx.state.vhost = true;
      ctx.mountPath = '/';
    }
    return next();
  });
  const { port } = await server.run();
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const client = (bucket = buckets[0]!) =>
    new S3Bucket({
      endpoint,
      region: 'us-east-1',
      bucket,
      prefix: '',
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
      forcePathStyle: true,
      ca: opts.tls?.cert,
    });
  return {
    endpoint,
    port,
    env: ({ bucket = buckets[0]!, prefix = '' } = {}) => ({
      SOTTO_STORAGE: 's3',
      SOTTO_S3_ENDPOINT: endpoint,
      SOTTO_S3_REGION: 'us-east-1',
      SOTTO_S3_BUCKET: bucket,
      ...(prefix ? { SOTTO_S3_PREFIX: prefix } : {}),
      SOTTO_S3_ACCESS_KEY_ID: S3_ACCESS_KEY,
      SOTTO_S3_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    }),
    keys: async (prefix = '', bucket?: string) => {
      const b = client(bucket);
      try {
        return (await b.list(prefix)).map((o) => o.key).sort();
      } finally {
        b.close();
      }
    },
    read: async (key: string, bucket?: string) => {
      const b = client(bucket);
      try {
        const body = await b.get(key);
        if (!body) return undefined;
        const parts: Buffer[] = [];
        for await (const c of body as Readable) parts.push(c as Buffer);
        return Buffer.concat(parts);
      } finally {
        b.close();
      }
    },
    close: async () => {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy in front of the S3 server. It counts the bytes the server sends back (what a
 * playback range really downloads) and, while `cutEvery(n)` is set, drops every connection once
 * it has carried `n` bytes upstream: a network failure in the middle of an upload, on every retry.
 */
export async function cuttingProxy(targetPort: number): Promise<{
  endpoint: string;
  cutEvery(bytes: number | undefined): void;
  cuts(): number;
  downloaded(): number;
  close(): Promise<void>;
}> {
  let limit: number | undefined;
  let cuts = 0;
  let downloaded = 0;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sent = 0;
    const forget = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (limit !== undefined && sent > limit) {
        cuts++;
        // Both sides drop mid-request: the server sees a truncated body, the client a reset.
        forget();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      downloaded += chunk.length;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cutEvery: (bytes) => {
      limit = bytes;
    },
    cuts: () => cuts,
    downloaded: () => downloaded,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        proxy.close(() => resolve());
      }),
  };
}
