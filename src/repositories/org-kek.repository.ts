import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

/**
 * The external key store: one file per organization, `<keyDir>/org-<orgId>.kek`, holding that
 * org's key-encryption key sealed by the master key. It lives outside the database on purpose:
 * deleting the file crypto-shreds the org in every copy of the database, backups included.
 *
 * Writes are atomic and durable (temp file 0600 + fsync + rename + fsync of the folder), so a
 * crash leaves either the old file or the new one, never half of one; removal fsyncs the folder
 * too, so a shredded key does not come back after a power cut. Files are small and read once
 * per process per org (the key service caches them), so reads are synchronous: they can run
 * inside a database transaction without yielding to another one.
 */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class OrgKekRepository {
  constructor(private readonly dir: string) {}

  get directory(): string {
    return this.dir;
  }

  file(orgId: string): string {
    const id = orgId.toLowerCase();
    if (!ID.test(id)) throw new Error('invalid org id');
    return path.join(this.dir, `org-${id}.kek`);
  }

  /** The sealed KEK, or undefined when the org has none (never had one, or shredded). */
  read(orgId: string): Buffer | undefined {
    try {
      return readFileSync(this.file(orgId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Writes (or replaces) the sealed KEK atomically and durably. */
  write(orgId: string, sealed: Buffer): void {
    const final = this.file(orgId);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const temp = path.join(this.dir, `.${path.basename(final)}.${randomUUID()}.tmp`);
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, sealed);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(temp, final);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    this.syncDir();
  }

  /** Destroys the KEK (crypto-shredding). Idempotent. */
  destroy(orgId: string): void {
    rmSync(this.file(orgId), { force: true });
    this.syncDir();
  }

  private syncDir(): void {
    let fd: number | undefined;
    try {
      fd = openSync(this.dir, 'r');
      fsyncSync(fd);
    } catch (err) {
      // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
      if (
        (err as NodeJS.ErrnoException).code !== 'EINVAL' &&
        (err as NodeJS.ErrnoException).code !== 'ENOENT'
      )
        throw err;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
