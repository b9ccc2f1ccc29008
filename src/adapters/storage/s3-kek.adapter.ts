import { Readable } from 'node:stream';
import { kekName, type OrgKekStore } from './org-kek.adapter.js';
import type { S3Bucket } from './s3-bucket.adapter.js';
import type { StorageCheck } from './sealed-file-store.adapter.js';

/**
 * The key store in object storage (SOTTO_KEY_STORE=s3): one object per organization,
 * `<SOTTO_KEY_S3_PREFIX>org-<orgId>.kek`, in a bucket (or prefix) of its own with its own
 * credentials, apart from the audio bucket: every node reads it, the database never holds it, and
 * backups of data and of keys stay apart (docs/deployment.md).
 *
 * A write is one multipart upload (S3Bucket.put): the object appears whole or not at all. A
 * destroy is a DELETE; on a bucket with versioning (or object lock) the sealed KEK would survive
 * as an older version, so `versioning` is checked at start (app.ts refuses `on`).
 */
export class S3KekStore implements OrgKekStore {
  readonly kind = 's3';

  constructor(private readonly bucket: S3Bucket) {}

  /**
   * The store, once its bucket is known not to keep old versions: refused when versioning is (or
   * was) on, since a shredded key would survive as an older version. 'unknown' (a store without
   * the call, or credentials that may not ask) is returned for the caller to warn about.
   */
  static async open(bucket: S3Bucket): Promise<{ store: S3KekStore; versioning: 'off' | 'unknown' }> {
    const versioning = await bucket.versioning();
    if (versioning === 'on') {
      bucket.close();
      throw new Error(
        `SOTTO_KEY_S3_BUCKET: versioning is enabled (or suspended) on ${bucket.bucket}: a destroyed organization key would survive as an older version, so deleting an organization could not crypto-shred it; use a bucket that never had versioning or object lock (docs/deployment.md#key-store)`,
      );
    }
    return { store: new S3KekStore(bucket), versioning };
  }

  async read(orgId: string): Promise<Buffer | undefined> {
    const body = await this.bucket.get(kekName(orgId));
    if (!body) return undefined;
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  async write(orgId: string, sealed: Buffer): Promise<void> {
    await this.bucket.put(kekName(orgId), Readable.from([sealed]));
  }

  async destroy(orgId: string): Promise<void> {
    await this.bucket.delete(kekName(orgId));
  }

  check(): Promise<StorageCheck> {
    return this.bucket.check();
  }

  versioning(): Promise<'off' | 'on' | 'unknown'> {
    return this.bucket.versioning();
  }

  /** `bucket/prefix` for log lines (never a credential). */
  get location(): string {
    return `${this.bucket.bucket}/${this.bucket.prefix}`;
  }

  close(): void {
    this.bucket.close();
  }
}
