import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { SealedFileStore, type SealedObjectStore } from './sealed-file-store.adapter.js';

/**
 * Sealed org exports, plus the builder's encrypted scratch files
 * `<dataDir>/exports/<orgId>/.<exportId>.<random>.tmp` (always local: only the building node reads
 * them back). The finished exports are a SealedObjectStore: by default the local one, files
 * `<dataDir>/exports/<orgId>/<exportId>.bin` beside the scratch files (0600, folders 0700; ids
 * checked, temp + fsync + rename + folder fsync), or `exports/…` in an S3 bucket
 * (SOTTO_STORAGE=s3), so any node serves a download. This names the id an export id.
 */
export interface ExportFileEntry {
  orgId: string;
  /** Set for a finished file; undefined for temp files and strays. */
  exportId: string | undefined;
  file: string;
  mtimeMs: number;
}

export class ExportFileStore {
  /** The local folder: scratch files always, finished exports too unless `finals` is given. */
  private readonly local: SealedFileStore;
  private readonly store: SealedObjectStore;

  constructor(dir: string, finals?: SealedObjectStore) {
    this.local = new SealedFileStore(dir, 'export');
    this.store = finals ?? this.local;
  }

  get directory(): string {
    return this.local.directory;
  }

  /** Streams `source` through `transforms` into a new scratch file; returns its path (removed on failure). */
  writeScratch(orgId: string, exportId: string, source: Readable, transforms: Transform[]): Promise<string> {
    return this.local.writeTemp(orgId, exportId, source, transforms, false);
  }

  /** Reads a scratch file this store wrote (refuses any other path). */
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

  /** Every finished export and scratch file, for the sweep to judge. */
  async list(): Promise<ExportFileEntry[]> {
    const entries = await this.store.list();
    // With finished exports elsewhere, the local folder still holds the scratch files (no id).
    if (this.store !== this.local) entries.push(...(await this.local.list()).filter((e) => !e.id));
    return entries.map(({ id, ...e }) => ({ ...e, exportId: id }));
  }

  /** Deletes an entry `list()` returned (only inside the exports folder or store). */
  removeListed(entry: ExportFileEntry): Promise<void> {
    // Local entries are absolute paths; object keys never start with '/'.
    const owner = path.isAbsolute(entry.file) ? this.local : this.store;
    return owner.removeListed(entry.file);
  }

  /** Removes an org's finished exports (org deletion; the local folder goes with the others). */
  removeOrg(orgId: string): Promise<number> {
    return this.store.removeOrg(orgId);
  }

  private checkScratch(file: string): void {
    if (!this.local.holds(file) || !path.basename(path.resolve(file)).endsWith('.tmp'))
      throw new Error('not an export scratch file');
  }
}
