import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import {
  ARCHIVE_ID,
  PARTS,
  checkIds,
  checkOrg,
  type ArchiveEntry,
  type ArchivePart,
  type ArchiveStore,
  type StoredPart,
} from './archive-store.adapter.js';
import type { S3Bucket } from './s3-bucket.adapter.js';

/**
 * The cold archive in the object store's bucket (SOTTO_ARCHIVE_STORE=s3, the default with
 * SOTTO_STORAGE=s3): `archive/<org>/<archiveId>.<part>`, sealed bytes only. A part appears whole
 * or not at all (S3 PUT / CompleteMultipartUpload), so there are no temp objects to sweep.
 */

export class S3ArchiveStore implements ArchiveStore {
  readonly kind = 's3' as const;
  constructor(private readonly bucket: S3Bucket) {}

  private key(orgId: string, archiveId: string, part: ArchivePart): string {
    const { org, id } = checkIds(orgId, archiveId);
    return `archive/${org}/${id}.${part}`;
  }

  async put(orgId: string, archiveId: string, part: ArchivePart, source: Readable): Promise<StoredPart> {
    const hash = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    await this.bucket.put(this.key(orgId, archiveId, part), source, [tap]);
    return { size, sha256: hash.digest('hex') };
  }

  get(orgId: string, archiveId: string, part: ArchivePart): Promise<Readable | undefined> {
    return this.bucket.get(this.key(orgId, archiveId, part));
  }

  async remove(orgId: string, archiveId: string): Promise<void> {
    for (const part of PARTS) await this.bucket.delete(this.key(orgId, archiveId, part));
  }

  async removeOrg(orgId: string): Promise<void> {
    const org = checkOrg(orgId);
    await this.bucket.deletePrefix(`archive/${org}/`);
  }

  async list(): Promise<ArchiveEntry[]> {
    const byItem = new Map<string, ArchiveEntry>();
    for (const o of await this.bucket.list('archive/')) {
      const m = /^archive\/([^/]+)\/([^/.]+)\.[a-z]+$/.exec(o.key);
      if (!m || !ARCHIVE_ID.test(m[1]!) || !ARCHIVE_ID.test(m[2]!)) continue;
      const key = `${m[1]}/${m[2]}`;
      const seen = byItem.get(key);
      if (!seen || o.mtimeMs < seen.writtenAtMs)
        byItem.set(key, { orgId: m[1]!, archiveId: m[2]!, writtenAtMs: o.mtimeMs });
    }
    return [...byItem.values()];
  }
}
