import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { readdirSafe, syncDir } from './sealed-file-store.adapter.js';

/**
 * Where archived (cold) recordings live: sealed bytes only, encrypted before they get here. Three
 * implementations behind one interface:
 *  - `dir`: `<SOTTO_ARCHIVE_DIR>/<org>/<archiveId>.<part>` (files 0600, folders 0700), written to
 *    a temp name, fsynced, renamed, and the folder fsynced: a write that returned survives a crash;
 *  - `database`: the archive_objects table in 1 MiB rows, for several nodes without a shared disk
 *    (repositories/lifecycle/archive-store.repository.ts);
 *  - `s3`: `archive/<org>/<archiveId>.<part>` in the object store's bucket (s3-archive-store.adapter.ts).
 * A part is `object` (the sealed recording) or `audio` (the kept audio's sealed blob, copied).
 * Only server-chosen UUIDs reach a path or a row.
 */
export type ArchivePart = 'object' | 'audio';

export interface StoredPart {
  size: number;
  /** SHA-256 (hex) of the bytes as stored (sealed). */
  sha256: string;
}

export interface ArchiveEntry {
  orgId: string;
  archiveId: string;
  /** When the oldest part was written (the sweep only touches entries older than its margin). */
  writtenAtMs: number;
}

export interface ArchiveStore {
  readonly kind: 'dir' | 'database' | 's3';
  /** Stores a part durably (returns after fsync / commit). Replaces an earlier part of that name. */
  put(orgId: string, archiveId: string, part: ArchivePart, source: Readable, now: Date): Promise<StoredPart>;
  /** The part's bytes as a stream; undefined when it does not exist. */
  get(orgId: string, archiveId: string, part: ArchivePart): Promise<Readable | undefined>;
  /** Removes every part of an item. Idempotent. */
  remove(orgId: string, archiveId: string): Promise<void>;
  /** Removes every item of an org (org deletion). */
  removeOrg(orgId: string): Promise<void>;
  /** Every stored item (for the orphan sweep). */
  list(): Promise<ArchiveEntry[]>;
}

/** The only ids that reach a path, a key or a row: server-chosen UUIDs. */
export const ARCHIVE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const PARTS: readonly ArchivePart[] = ['object', 'audio'];

/** The org id as every store writes it (lower case); throws unless it is a UUID. */
export function checkOrg(orgId: string): string {
  const org = orgId.toLowerCase();
  if (!ARCHIVE_ID.test(org)) throw new Error('invalid archive id');
  return org;
}

export function checkIds(orgId: string, archiveId: string): { org: string; id: string } {
  const org = checkOrg(orgId);
  const id = archiveId.toLowerCase();
  if (!ARCHIVE_ID.test(id)) throw new Error('invalid archive id');
  return { org, id };
}

export class DirArchiveStore implements ArchiveStore {
  readonly kind = 'dir' as const;
  constructor(readonly directory: string) {}

  private file(orgId: string, archiveId: string, part: ArchivePart): string {
    const { org, id } = checkIds(orgId, archiveId);
    return path.join(this.directory, org, `${id}.${part}`);
  }

  async put(orgId: string, archiveId: string, part: ArchivePart, source: Readable): Promise<StoredPart> {
    const final = this.file(orgId, archiveId, part);
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = path.join(dir, `.${archiveId}.${randomUUID()}.tmp`);
    const hash = createHash('sha256');
    let size = 0;
    const handle = await open(temp, 'wx', 0o600);
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        hash.update(buf);
        size += buf.length;
        await handle.write(buf);
      }
      await handle.sync();
      await handle.close();
      await rename(temp, final);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw err;
    }
    await syncDir(dir);
    return { size, sha256: hash.digest('hex') };
  }

  async get(orgId: string, archiveId: string, part: ArchivePart): Promise<Readable | undefined> {
    const file = this.file(orgId, archiveId, part);
    try {
      await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return createReadStream(file);
  }

  /** Removes the item's parts and any temp file an interrupted write of it left. */
  async remove(orgId: string, archiveId: string): Promise<void> {
    for (const part of PARTS) await rm(this.file(orgId, archiveId, part), { force: true });
    const { org, id } = checkIds(orgId, archiveId);
    const dir = path.join(this.directory, org);
    for (const name of await readdirSafe(dir))
      if (name.startsWith(`.${id}.`) && name.endsWith('.tmp'))
        await rm(path.join(dir, name), { force: true });
  }

  async removeOrg(orgId: string): Promise<void> {
    const org = checkOrg(orgId);
    await rm(path.join(this.directory, org), { recursive: true, force: true });
  }

  async list(): Promise<ArchiveEntry[]> {
    const byItem = new Map<string, ArchiveEntry>();
    for (const orgId of await readdirSafe(this.directory)) {
      if (!ARCHIVE_ID.test(orgId)) continue;
      const dir = path.join(this.directory, orgId);
      for (const name of await readdirSafe(dir)) {
        const info = await stat(path.join(dir, name)).catch(() => undefined);
        if (!info?.isFile()) continue;
        // Item parts and temp files of interrupted writes (".<id>.<uuid>.tmp") alike.
        const m = /^\.?([0-9a-f-]{36})\./.exec(name);
        if (!m || !ARCHIVE_ID.test(m[1]!)) continue;
        const key = `${orgId}/${m[1]}`;
        const seen = byItem.get(key);
        if (!seen || info.mtimeMs < seen.writtenAtMs)
          byItem.set(key, { orgId, archiveId: m[1]!, writtenAtMs: info.mtimeMs });
      }
    }
    return [...byItem.values()];
  }
}
