import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Sealed org exports on local disk, `<dataDir>/exports/<orgId>/<exportId>.bin` (0600, folders
 * 0700), plus the builder's encrypted scratch files `.<exportId>.<random>.tmp` in the same folder.
 * Only server-chosen ids reach a path (validated again here). The final file is written to a temp
 * name and renamed, so a reader never sees half a file and a crash leaves only temp files for the
 * sweep.
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface ExportFileEntry {
  orgId: string;
  /** Set for a finished file; undefined for temp files and strays. */
  exportId: string | undefined;
  file: string;
  mtimeMs: number;
}

export class ExportFileRepository {
  constructor(private readonly dir: string) {}

  get directory(): string {
    return this.dir;
  }

  filePath(orgId: string, exportId: string): string {
    const org = orgId.toLowerCase();
    const id = exportId.toLowerCase();
    if (!ID.test(org) || !ID.test(id)) throw new Error('invalid export id');
    return path.join(this.dir, org, `${id}.bin`);
  }

  private async tempPath(orgId: string, exportId: string): Promise<string> {
    const final = this.filePath(orgId, exportId);
    await mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
    return path.join(path.dirname(final), `.${exportId.toLowerCase()}.${randomUUID()}.tmp`);
  }

  /** Streams `source` through `transforms` into a new scratch file; returns its path (removed on failure). */
  async writeScratch(
    orgId: string,
    exportId: string,
    source: Readable,
    transforms: Transform[],
  ): Promise<string> {
    const temp = await this.tempPath(orgId, exportId);
    try {
      await pipeline([source, ...transforms, createWriteStream(temp, { flags: 'wx', mode: 0o600 })]);
      return temp;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** Reads a scratch file this repository wrote (refuses any other path). */
  readScratch(file: string): Readable {
    this.checkScratch(file);
    return createReadStream(file);
  }

  async removeScratch(file: string): Promise<void> {
    this.checkScratch(file);
    await rm(file, { force: true });
  }

  /** Streams `source` through `transforms` into the final file, atomically (temp + rename). */
  async write(orgId: string, exportId: string, source: Readable, transforms: Transform[]): Promise<void> {
    const final = this.filePath(orgId, exportId);
    const temp = await this.tempPath(orgId, exportId);
    try {
      await pipeline([source, ...transforms, createWriteStream(temp, { flags: 'wx', mode: 0o600 })]);
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /** The first `n` bytes and the file size; undefined when the file does not exist. */
  async head(
    orgId: string,
    exportId: string,
    n: number,
  ): Promise<{ bytes: Buffer; size: number } | undefined> {
    let handle;
    try {
      handle = await open(this.filePath(orgId, exportId), 'r');
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

  readRange(orgId: string, exportId: string, start: number, end: number): Readable {
    return createReadStream(this.filePath(orgId, exportId), { start, end });
  }

  async remove(orgId: string, exportId: string): Promise<void> {
    await rm(this.filePath(orgId, exportId), { force: true });
  }

  /** Every file under the exports folder, for the sweep to judge. */
  async list(): Promise<ExportFileEntry[]> {
    const out: ExportFileEntry[] = [];
    for (const orgId of await readdirSafe(this.dir)) {
      if (!ID.test(orgId)) continue;
      const dir = path.join(this.dir, orgId);
      for (const name of await readdirSafe(dir)) {
        const file = path.join(dir, name);
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) continue;
        const m = /^(.+)\.bin$/.exec(name);
        const exportId = m && ID.test(m[1]!) ? m[1] : undefined;
        out.push({ orgId, exportId, file, mtimeMs: info.mtimeMs });
      }
    }
    return out;
  }

  /** Deletes a file `list()` returned (only inside the exports folder). */
  async removeListed(entry: ExportFileEntry): Promise<void> {
    const resolved = path.resolve(entry.file);
    if (path.dirname(path.dirname(resolved)) !== path.resolve(this.dir)) return;
    await rm(resolved, { force: true });
  }

  private checkScratch(file: string): void {
    const resolved = path.resolve(file);
    if (
      path.dirname(path.dirname(resolved)) !== path.resolve(this.dir) ||
      !path.basename(resolved).endsWith('.tmp')
    )
      throw new Error('not an export scratch file');
  }
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
