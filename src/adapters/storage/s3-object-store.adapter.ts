import { createHash } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Bucket } from './s3-bucket.adapter.js';
import type { SealedFileEntry, SealedObjectStore, StorageCheck } from './sealed-file-store.adapter.js';

/**
 * Sealed objects in an S3-compatible bucket, `<prefix><area>/<orgId>/<id>.bin`: the same bytes the
 * local store writes (chunked AES-256-GCM, sealed before they leave the process), so playback
 * ranges fetch only the sealed chunks they need with a Range GET. Only server-chosen UUIDs reach
 * a key (checked again here: ids also come back from the database and from listings).
 * There are no temp objects: an upload that did not complete is invisible and aborted (a bucket
 * lifecycle rule that aborts incomplete multipart uploads cleans up after a killed process).
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class S3ObjectStore implements SealedObjectStore {
  readonly kind = 's3' as const;

  /** `area`: the folder in the bucket ("audio", "exports"); `what` names the id in errors. */
  constructor(
    private readonly bucket: S3Bucket,
    private readonly area: string,
    private readonly what: string,
  ) {}

  key(orgId: string, id: string): string {
    const org = orgId.toLowerCase();
    const lower = id.toLowerCase();
    if (!ID.test(org) || !ID.test(lower)) throw new Error(`invalid ${this.what} id`);
    return `${this.area}/${org}/${lower}.bin`;
  }

  write(orgId: string, id: string, source: Readable, transforms: Transform[]): Promise<void> {
    return this.bucket.put(this.key(orgId, id), source, transforms);
  }

  async head(orgId: string, id: string, n: number): Promise<{ bytes: Buffer; size: number } | undefined> {
    const key = this.key(orgId, id);
    const info = await this.bucket.stat(key);
    if (!info) return undefined;
    const want = Math.min(n, info.size);
    if (want === 0) return { bytes: Buffer.alloc(0), size: info.size };
    const body = await this.bucket.get(key, { start: 0, end: want - 1 });
    if (!body) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return { bytes: Buffer.concat(chunks).subarray(0, want), size: info.size };
  }

  readRange(orgId: string, id: string, start: number, end: number): Readable {
    const key = this.key(orgId, id);
    const bucket = this.bucket;
    // Lazy, so the caller gets a stream at once as with a file; the GET starts when it is read.
    // Destroying the stream ends the generator, which ends the response body's iteration.
    // Exactly end - start + 1 bytes, whatever the server sends past them (some stores answer
    // "bytes=0-0" with more than one byte); fewer is an error, never a short success.
    return Readable.from(
      (async function* () {
        const body = await bucket.get(key, { start, end });
        if (!body) throw Object.assign(new Error('object not found'), { code: 'ENOENT' });
        let left = end - start + 1;
        for await (const chunk of body) {
          const buf = chunk as Buffer;
          if (buf.length >= left) {
            yield buf.subarray(0, left);
            left = 0;
            break;
          }
          left -= buf.length;
          yield buf;
        }
        if (left > 0) throw new Error('object shorter than the range read');
      })(),
      { objectMode: false },
    );
  }

  async sha256(orgId: string, id: string): Promise<string | undefined> {
    const body = await this.bucket.get(this.key(orgId, id));
    if (!body) return undefined;
    const hash = createHash('sha256');
    await pipeline(body, hash);
    return hash.digest('hex');
  }

  remove(orgId: string, id: string): Promise<void> {
    return this.bucket.delete(this.key(orgId, id));
  }

  removeOrg(orgId: string): Promise<number> {
    const org = orgId.toLowerCase();
    if (!ID.test(org)) throw new Error('invalid org id');
    return this.bucket.deletePrefix(`${this.area}/${org}/`);
  }

  async list(): Promise<SealedFileEntry[]> {
    const out: SealedFileEntry[] = [];
    for (const o of await this.bucket.list(`${this.area}/`)) {
      const m = /^[^/]+\/([^/]+)\/([^/]+)$/.exec(o.key);
      if (!m || !ID.test(m[1]!)) continue;
      const name = /^(.+)\.bin$/.exec(m[2]!);
      const id = name && ID.test(name[1]!) ? name[1] : undefined;
      out.push({ orgId: m[1]!, id, file: o.key, mtimeMs: o.mtimeMs });
    }
    return out;
  }

  async removeListed(file: string): Promise<void> {
    if (!file.startsWith(`${this.area}/`) || file.includes('..')) return;
    await this.bucket.delete(file);
  }

  check(): Promise<StorageCheck> {
    return this.bucket.check();
  }
}
