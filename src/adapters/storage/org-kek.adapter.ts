import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StorageCheck } from './sealed-file-store.adapter.js';

/**
 * Where each organization's key-encryption key (KEK), sealed by the master key, lives: outside
 * the database on purpose, so that destroying it crypto-shreds the org in every copy of the
 * database, backups included (docs/security.md). Two homes (SOTTO_KEY_STORE): a directory
 * (DirKekStore, below) or an S3 bucket/prefix of its own (S3KekStore).
 * Reads happen once per process per org (the key service caches the KEK); they may run inside a
 * database transaction, which only waits for them (PostgreSQL and PGlite transactions are async).
 */
export interface OrgKekStore {
  readonly kind: 'dir' | 's3';
  /** The sealed KEK, or undefined when the org has none (never had one, or shredded). */
  read(orgId: string): Promise<Buffer | undefined>;
  /** Writes (or replaces) the sealed KEK atomically and durably. */
  write(orgId: string, sealed: Buffer): Promise<void>;
  /** Destroys the KEK (crypto-shredding). Idempotent. */
  destroy(orgId: string): Promise<void>;
  /** Whether the store can be used (/readyz). */
  check(): Promise<StorageCheck>;
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `org-<id>.kek`: the file (or object) name of an org's KEK; anything but a UUID is refused. */
export function kekName(orgId: string): string {
  const id = orgId.toLowerCase();
  if (!ID.test(id)) throw new Error('invalid org id');
  return `org-${id}.kek`;
}

/**
 * The directory store (SOTTO_KEY_DIR): one file per organization, `<keyDir>/org-<orgId>.kek`.
 * Writes are atomic and durable (temp file 0600 + fsync + rename + fsync of the folder), so a
 * crash leaves either the old file or the new one, never half of one; removal fsyncs the folder
 * too, so a shredded key does not come back after a power cut.
 */
export class DirKekStore implements OrgKekStore {
  readonly kind = 'dir';

  constructor(private readonly dir: string) {}

  get directory(): string {
    return this.dir;
  }

  file(orgId: string): string {
    return path.join(this.dir, kekName(orgId));
  }

  async read(orgId: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.file(orgId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async write(orgId: string, sealed: Buffer): Promise<void> {
    const final = this.file(orgId);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const temp = path.join(this.dir, `.${path.basename(final)}.${randomUUID()}.tmp`);
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(sealed);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.syncDir();
  }

  async destroy(orgId: string): Promise<void> {
    await rm(this.file(orgId), { force: true });
    await this.syncDir();
  }

  /** The folder exists (or can be made) and is readable. */
  async check(): Promise<StorageCheck> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await (await open(this.dir, 'r')).close();
      return 'ok';
    } catch {
      return 'failed';
    }
  }

  private async syncDir(): Promise<void> {
    let fh: Awaited<ReturnType<typeof open>> | undefined;
    try {
      fh = await open(this.dir, 'r');
      await fh.sync();
    } catch (err) {
      // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
      if (
        (err as NodeJS.ErrnoException).code !== 'EINVAL' &&
        (err as NodeJS.ErrnoException).code !== 'ENOENT'
      )
        throw err;
    } finally {
      await fh?.close();
    }
  }
}
