import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Sealed audio blobs on local disk, `<dataDir>/audio/<orgId>/<recordingId>.bin` (0600, folders
 * 0700), and private work files `<dataDir>/tmp/work/*` holding decrypted copies for the local
 * pipeline. Only ids chosen by the server reach a path (validated here again, since the ids also
 * come back from the database and from sweeps). Blobs are written to a temp name in the same
 * folder and renamed, so a reader never sees a half-written blob and a crash leaves only a
 * `.tmp` file the start-up sweep removes.
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface BlobEntry {
  orgId: string;
  recordingId: string | undefined;
  file: string;
  mtimeMs: number;
}

export class AudioBlobRepository {
  constructor(
    private readonly audioDir: string,
    private readonly workDir: string,
  ) {}

  get directory(): string {
    return this.audioDir;
  }

  blobPath(orgId: string, recordingId: string): string {
    // UUIDs arrive in either case from a URL; the database and the file names use lower case.
    const org = orgId.toLowerCase();
    const rec = recordingId.toLowerCase();
    if (!ID.test(org) || !ID.test(rec)) throw new Error('invalid blob id');
    return path.join(this.audioDir, org, `${rec}.bin`);
  }

  /** Streams `source` through `transform` into the blob, atomically (temp file + rename). */
  async write(orgId: string, recordingId: string, source: Readable, transform: Transform): Promise<void> {
    const final = this.blobPath(orgId, recordingId);
    await mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
    const temp = path.join(path.dirname(final), `.${recordingId}.${randomUUID()}.tmp`);
    try {
      await pipeline(source, transform, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** Reads the first `n` bytes (the header); undefined when the blob does not exist. */
  async head(
    orgId: string,
    recordingId: string,
    n: number,
  ): Promise<{ bytes: Buffer; size: number } | undefined> {
    let handle;
    try {
      handle = await open(this.blobPath(orgId, recordingId), 'r');
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
  readRange(orgId: string, recordingId: string, start: number, end: number): Readable {
    return createReadStream(this.blobPath(orgId, recordingId), { start, end });
  }

  async remove(orgId: string, recordingId: string): Promise<void> {
    await rm(this.blobPath(orgId, recordingId), { force: true });
  }

  /** Streams `source` into a new private work file (removed again if the stream fails). */
  async writeWorkFile(source: Readable): Promise<string> {
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
    const file = path.join(this.workDir, `${randomUUID()}.audio`);
    try {
      await pipeline(source, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    return file;
  }

  /** Deletes a work file; paths outside the work folder are refused. */
  async removeWorkFile(file: string): Promise<void> {
    const resolved = path.resolve(file);
    if (path.dirname(resolved) !== path.resolve(this.workDir)) return;
    await rm(resolved, { force: true });
  }

  /** Removes every work file older than `olderThanMs` (a live checkout is younger). */
  async sweepWork(olderThanMs: number, now: number): Promise<number> {
    let removed = 0;
    for (const name of await readdirSafe(this.workDir)) {
      const file = path.join(this.workDir, name);
      const info = await stat(file).catch(() => undefined);
      if (!info?.isFile() || now - info.mtimeMs < olderThanMs) continue;
      await rm(file, { force: true });
      removed++;
    }
    return removed;
  }

  /**
   * Every file under the audio folder: blobs (recordingId set) and anything else (temp files of
   * interrupted writes, strays; recordingId undefined) for the sweep to judge.
   */
  async list(): Promise<BlobEntry[]> {
    const out: BlobEntry[] = [];
    for (const orgId of await readdirSafe(this.audioDir)) {
      if (!ID.test(orgId)) continue;
      const dir = path.join(this.audioDir, orgId);
      for (const name of await readdirSafe(dir)) {
        const file = path.join(dir, name);
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) continue;
        const m = /^(.+)\.bin$/.exec(name);
        const recordingId = m && ID.test(m[1]!) ? m[1] : undefined;
        out.push({ orgId, recordingId, file, mtimeMs: info.mtimeMs });
      }
    }
    return out;
  }

  /** Deletes a file `list()` returned (only inside the audio folder). */
  async removeListed(entry: BlobEntry): Promise<void> {
    const resolved = path.resolve(entry.file);
    if (path.dirname(path.dirname(resolved)) !== path.resolve(this.audioDir)) return;
    await rm(resolved, { force: true });
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
