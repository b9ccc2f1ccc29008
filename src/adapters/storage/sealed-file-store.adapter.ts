import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256File } from './file-digest.adapter.js';

/**
 * Sealed (already encrypted) files on local disk, one per id, `<dir>/<orgId>/<id>.bin` (0600,
 * folders 0700). Shared by the audio blobs and the org exports. Only server-chosen ids reach a
 * path (validated again here, since ids also come back from the database and from sweeps).
 * A file is written to a temp name `.<id>.<random>.tmp` in the same folder, fsynced, renamed and
 * the folder fsynced: a reader never sees half a file, a write that returned survives a crash,
 * and a crash leaves only temp files for the sweep.
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NIL = '00000000-0000-0000-0000-000000000000';

export interface SealedFileEntry {
  orgId: string;
  /** Set for a finished file; undefined for temp files and strays. */
  id: string | undefined;
  /** Where it is: a path (local) or an object key (S3); only for `removeListed`. */
  file: string;
  mtimeMs: number;
}

/** Whether the store can be used now (/readyz, the start-up log). */
export type StorageCheck = 'ok' | 'no_bucket' | 'denied' | 'failed';

/**
 * Sealed (already encrypted) objects, one per (org, id): the local folder below, or an
 * S3-compatible bucket (s3-object-store.adapter.ts), chosen once in app.ts from SOTTO_STORAGE.
 * Both make a write all-or-nothing: a reader never sees half an object.
 */
export interface SealedObjectStore {
  readonly kind: 'local' | 's3';
  /** Streams `source` through `transforms` into the object, atomically and durably. */
  write(orgId: string, id: string, source: Readable, transforms: Transform[]): Promise<void>;
  /** The first `n` bytes and the size; undefined when the object does not exist. */
  head(orgId: string, id: string, n: number): Promise<{ bytes: Buffer; size: number } | undefined>;
  /** Bytes [start, end] (inclusive) as a stream: only that span is read (an S3 Range GET). */
  readRange(orgId: string, id: string, start: number, end: number): Readable;
  /** SHA-256 (hex) of the stored bytes; undefined when the object does not exist. */
  sha256(orgId: string, id: string): Promise<string | undefined>;
  remove(orgId: string, id: string): Promise<void>;
  /** Removes every object of an org (org deletion); returns how many there were. */
  removeOrg(orgId: string): Promise<number>;
  /** Every object (finished ones with their id; temp files and strays without) for the sweeps. */
  list(): Promise<SealedFileEntry[]>;
  /** Deletes an entry `list()` returned (only inside this store). */
  removeListed(file: string): Promise<void>;
  check(): Promise<StorageCheck>;
}

export class SealedFileStore implements SealedObjectStore {
  readonly kind = 'local' as const;

  /** `what` names the kind of file in the error for a bad id ("invalid blob id"). */
  constructor(
    readonly directory: string,
    private readonly what: string,
  ) {}

  filePath(orgId: string, id: string): string {
    // UUIDs arrive in either case from a URL; the database and the file names use lower case.
    const org = orgId.toLowerCase();
    const lower = id.toLowerCase();
    if (!ID.test(org) || !ID.test(lower)) throw new Error(`invalid ${this.what} id`);
    return path.join(this.directory, org, `${lower}.bin`);
  }

  /** A new temp path next to the file of `id` (its folder created). */
  async tempPath(orgId: string, id: string): Promise<string> {
    const dir = path.dirname(this.filePath(orgId, id));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return path.join(dir, `.${id.toLowerCase()}.${randomUUID()}.tmp`);
  }

  /**
   * Streams `source` through `transforms` into a new temp file (fsynced when `durable`; a scratch
   * file that is read back and dropped need not be); removed on failure.
   */
  async writeTemp(
    orgId: string,
    id: string,
    source: Readable,
    transforms: Transform[],
    durable = true,
  ): Promise<string> {
    const temp = await this.tempPath(orgId, id);
    try {
      const sink = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: durable });
      await pipeline([source, ...transforms, sink]);
      return temp;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** Streams `source` through `transforms` into the file, atomically and durably. */
  async write(orgId: string, id: string, source: Readable, transforms: Transform[]): Promise<void> {
    const final = this.filePath(orgId, id);
    const temp = await this.writeTemp(orgId, id, source, transforms);
    try {
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await syncDir(path.dirname(final));
  }

  /** The first `n` bytes and the file size; undefined when the file does not exist. */
  async head(orgId: string, id: string, n: number): Promise<{ bytes: Buffer; size: number } | undefined> {
    let handle;
    try {
      handle = await open(this.filePath(orgId, id), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const info = await handle.stat();
      const bytes = Buffer.alloc(Math.min(n, info.size));
      await handle.read(bytes, 0, bytes.length, 0);
      return { bytes, size: info.size };
    } finally {
      await handle.close();
    }
  }

  /** Sealed bytes [start, end] (inclusive) as a stream. */
  readRange(orgId: string, id: string, start: number, end: number): Readable {
    return createReadStream(this.filePath(orgId, id), { start, end });
  }

  async remove(orgId: string, id: string): Promise<void> {
    await rm(this.filePath(orgId, id), { force: true });
  }

  sha256(orgId: string, id: string): Promise<string | undefined> {
    return sha256File(this.filePath(orgId, id));
  }

  async removeOrg(orgId: string): Promise<number> {
    const dir = path.dirname(this.filePath(orgId, NIL));
    const n = (await readdirSafe(dir)).length;
    await rm(dir, { recursive: true, force: true });
    return n;
  }

  /** The folder is created on first write; a local disk's trouble shows in /readyz's `disk`. */
  check(): Promise<StorageCheck> {
    return Promise.resolve('ok');
  }

  /** Every file under the folder (finished ones with their id, temp files and strays without). */
  async list(): Promise<SealedFileEntry[]> {
    const out: SealedFileEntry[] = [];
    for (const orgId of await readdirSafe(this.directory)) {
      if (!ID.test(orgId)) continue;
      const dir = path.join(this.directory, orgId);
      for (const name of await readdirSafe(dir)) {
        const file = path.join(dir, name);
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) continue;
        const m = /^(.+)\.bin$/.exec(name);
        const id = m && ID.test(m[1]!) ? m[1] : undefined;
        out.push({ orgId, id, file, mtimeMs: info.mtimeMs });
      }
    }
    return out;
  }

  /** Whether `file` lies in an org folder of this store (and so may be deleted by a sweep). */
  holds(file: string): boolean {
    return path.dirname(path.dirname(path.resolve(file))) === path.resolve(this.directory);
  }

  /** Deletes a file `list()` returned (only inside this store's folder). */
  async removeListed(file: string): Promise<void> {
    if (!this.holds(file)) return;
    await rm(path.resolve(file), { force: true });
  }
}

/** fsync a folder, so a rename into it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the file itself is synced.
  } finally {
    await handle.close();
  }
}

export async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
