import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import type { Database } from './db/database.js';
import { DirArchiveStore, type ArchiveStore } from './adapters/storage/archive-store.adapter.js';
import { DatabaseArchiveStore } from './repositories/lifecycle/archive-store.repository.js';
import { DirKekStore, type OrgKekStore } from './adapters/storage/org-kek.adapter.js';
import { S3ArchiveStore } from './adapters/storage/s3-archive-store.adapter.js';
import { S3Bucket } from './adapters/storage/s3-bucket.adapter.js';
import { S3KekStore } from './adapters/storage/s3-kek.adapter.js';
import { S3ObjectStore } from './adapters/storage/s3-object-store.adapter.js';
import { SealedFileStore, type SealedObjectStore } from './adapters/storage/sealed-file-store.adapter.js';

/**
 * The stores of the composition root (app.ts): where the per-org key-encryption keys, sealed
 * audio, exports and the cold archive live, chosen by configuration. Local directories are the
 * embedded default; with S3 the nodes share nothing but PostgreSQL, Redis and object storage
 * (docs/deployment.md).
 */
export interface Stores {
  keks: OrgKekStore;
  /** The storage bucket (SOTTO_STORAGE=s3), else undefined. */
  bucket: S3Bucket | undefined;
  blobStore: SealedObjectStore;
  /** Exports in the bucket; undefined: the export directory. */
  exportStore: SealedObjectStore | undefined;
  archiveStore: ArchiveStore;
  /** /readyz's storage check: the data store, and the key bucket when keys live in one. */
  storageCheck: Pick<SealedObjectStore, 'check'>;
}

export async function openStores(config: Config, db: Database, logger: Logger): Promise<Stores> {
  const keks = await openKekStore(config, logger);
  // Sealed audio and exports: the data directory, or one S3 bucket shared by every node
  // (docs/audio-storage.md#object-storage). Plaintext scratch stays local either way.
  const bucket = config.storage.kind === 's3' ? new S3Bucket(config.storage.s3) : undefined;
  const blobStore: SealedObjectStore = bucket
    ? new S3ObjectStore(bucket, 'audio', 'blob')
    : new SealedFileStore(path.join(config.dataDir, 'audio'), 'blob');
  const exportStore = bucket ? new S3ObjectStore(bucket, 'exports', 'export') : undefined;
  const archiveStore =
    config.archive.store === 'database'
      ? new DatabaseArchiveStore(db)
      : config.archive.store === 's3' && bucket
        ? new S3ArchiveStore(bucket)
        : new DirArchiveStore(config.archive.dir);
  // A node without its key bucket can neither create an org nor open one not yet cached.
  const storageCheck: Pick<SealedObjectStore, 'check'> =
    keks.kind === 's3'
      ? {
          check: async () => {
            const [data, keyStore] = await Promise.all([blobStore.check(), keks.check()]);
            return data !== 'ok' ? data : keyStore;
          },
        }
      : blobStore;
  return { keks, bucket, blobStore, exportStore, archiveStore, storageCheck };
}

/** The per-org KEK store (SOTTO_KEY_STORE): the key directory, or a bucket of its own. */
async function openKekStore(config: Config, logger: Logger): Promise<OrgKekStore> {
  if (config.keyStore.kind === 'dir') return new DirKekStore(config.keyStore.dir);
  const { store, versioning } = await S3KekStore.open(new S3Bucket(config.keyStore.s3));
  if (versioning === 'unknown')
    logger.warn(
      { keyStore: store.location },
      'could not read the versioning of SOTTO_KEY_S3_BUCKET: make sure versioning and object lock are off, or deleted organizations keep their keys as old versions (docs/deployment.md#key-store)',
    );
  const status = await store.check();
  if (status !== 'ok')
    logger.error(
      { keyStore: store.location, status },
      'key store unusable (SOTTO_KEY_S3_*): no organization can be created or opened until fixed; /readyz reports storage not ok',
    );
  return store;
}
