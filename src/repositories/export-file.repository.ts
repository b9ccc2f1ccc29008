import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { SealedFileStore } from './sealed-file-store.repository.js';

/**
 * Sealed org exports on local disk, `<dataDir>/exports/<orgId>/<exportId>.bin` (0600, folders
 * 0700), plus the builder's encrypted scratch files `.<exportId>.<random>.tmp` in the same folder.
 * The files themselves (ids checked, temp + fsync + rename + folder fsync) are a SealedFileStore;
 * this adds the scratch files and names the id an export id.
 */
export interface ExportFileEntry {
  orgId: string;
  /** Set for a finished file; undefined for temp files and strays. */
  exportId: string | undefined;
  file: string;
  mtimeMs: number;
}

export class ExportFileRepository {
  private readonly store: SealedFileStore;

  constructor(dir: string) {
    this.store = new SealedFileStore(dir, 'export');
  }

  get directory(): string {
    return this.store.directory;
  }

  filePath(orgId: string, exportId: string): string {
    return this.store.filePath(orgId, exportId);
  }

  /** Streams `source` through `transforms` into a new scratch file; returns its path (removed on failure). */
  writeScratch(orgId: string, exportId: string, source: Readable, transforms: Transform[]): Promise<string> {
    return this.store.writeTemp(orgId, exportId, source, transforms, false);
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

  /** Streams `source` through `transforms` into the final file, atomically and durably. */
  write(orgId: string, exportId: string, source: Readable, transforms: Transform[]): Promise<void> {
    return this.store.write(orgId, exportId, source, transforms);
  }

  /** The first `n` bytes and the file size; undefined when the file does not exist. */
  head(orgId: string, exportId: string, n: number): Promise<{ bytes: Buffer; size: number } | undefined> {
    return this.store.head(orgId, exportId, n);
  }

  readRange(orgId: string, exportId: string, start: number, end: number): Readable {
    return this.store.readRange(orgId, exportId, start, end);
  }

  remove(orgId: string, exportId: string): Promise<void> {
    return this.store.remove(orgId, exportId);
  }

  /** Every file under the exports folder, for the sweep to judge. */
  async list(): Promise<ExportFileEntry[]> {
    return (await this.store.list()).map(({ id, ...e }) => ({ ...e, exportId: id }));
  }

  /** Deletes a file `list()` returned (only inside the exports folder). */
  removeListed(entry: ExportFileEntry): Promise<void> {
    return this.store.removeListed(entry.file);
  }

  private checkScratch(file: string): void {
    if (!this.store.holds(file) || !path.basename(path.resolve(file)).endsWith('.tmp'))
      throw new Error('not an export scratch file');
  }
}
