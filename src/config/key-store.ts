import path from 'node:path';
import { s3Settings, type S3Settings, type StorageSettings } from './object-storage.js';

/**
 * Where the per-org key-encryption keys live (SOTTO_KEY_STORE, docs/deployment.md#key-store): a
 * directory (SOTTO_KEY_DIR), or a bucket/prefix of their own (SOTTO_KEY_S3_*). Never where the
 * sealed data lives: a backup of the data must not carry the keys that open it, or deleting an
 * organization (crypto-shredding) would not reach that backup.
 */
export type KeyStoreSettings = { kind: 'dir'; dir: string } | { kind: 's3'; s3: S3Settings };

export interface KeyStoreVars {
  SOTTO_ENV: string;
  SOTTO_KEY_STORE: 'dir' | 's3';
  SOTTO_KEY_DIR?: string | undefined;
  SOTTO_KEY_S3_ENDPOINT?: string | undefined;
  SOTTO_KEY_S3_REGION?: string | undefined;
  SOTTO_KEY_S3_BUCKET?: string | undefined;
  SOTTO_KEY_S3_PREFIX?: string | undefined;
  SOTTO_KEY_S3_ACCESS_KEY_ID?: string | undefined;
  SOTTO_KEY_S3_SECRET_ACCESS_KEY?: string | undefined;
  SOTTO_KEY_S3_SECRET_ACCESS_KEY_FILE?: string | undefined;
  SOTTO_KEY_S3_FORCE_PATH_STYLE?: boolean | undefined;
  SOTTO_KEY_S3_CA_FILE?: string | undefined;
}

const VARS = {
  endpoint: 'SOTTO_KEY_S3_ENDPOINT',
  region: 'SOTTO_KEY_S3_REGION',
  bucket: 'SOTTO_KEY_S3_BUCKET',
  prefix: 'SOTTO_KEY_S3_PREFIX',
  accessKeyId: 'SOTTO_KEY_S3_ACCESS_KEY_ID',
  secretAccessKey: 'SOTTO_KEY_S3_SECRET_ACCESS_KEY',
  secretAccessKeyFile: 'SOTTO_KEY_S3_SECRET_ACCESS_KEY_FILE',
  forcePathStyle: 'SOTTO_KEY_S3_FORCE_PATH_STYLE',
  caFile: 'SOTTO_KEY_S3_CA_FILE',
} as const;

/**
 * SOTTO_KEY_STORE and its variables. With s3, every setting but the bucket defaults to the
 * storage's parsed SOTTO_S3_* value (its endpoint, region, credentials as a whole, path style and
 * CA): an operator gives the keys their own bucket and, ideally, their own credentials.
 */
export function keyStoreSettings(
  v: KeyStoreVars,
  dataDir: string,
  storage: StorageSettings,
  problems: string[],
): KeyStoreSettings {
  const dir = path.resolve(v.SOTTO_KEY_DIR ?? path.join(path.resolve(dataDir), 'keys'));
  if (v.SOTTO_KEY_STORE === 'dir') {
    const stray = Object.values(VARS).filter((name) => v[name] !== undefined);
    // Keys configured for a bucket but written to a folder would look like a shared key store.
    if (stray.length > 0) problems.push(`${stray.join(', ')}: set, but SOTTO_KEY_STORE is not s3`);
    return { kind: 'dir', dir };
  }
  if (v.SOTTO_KEY_DIR !== undefined)
    problems.push('SOTTO_KEY_DIR: set, but SOTTO_KEY_STORE is s3 (the keys live in SOTTO_KEY_S3_BUCKET)');
  const own = s3Settings(
    {
      SOTTO_ENV: v.SOTTO_ENV,
      endpoint: v.SOTTO_KEY_S3_ENDPOINT,
      region: v.SOTTO_KEY_S3_REGION,
      bucket: v.SOTTO_KEY_S3_BUCKET,
      prefix: v.SOTTO_KEY_S3_PREFIX,
      accessKeyId: v.SOTTO_KEY_S3_ACCESS_KEY_ID,
      secretAccessKey: v.SOTTO_KEY_S3_SECRET_ACCESS_KEY,
      secretAccessKeyFile: v.SOTTO_KEY_S3_SECRET_ACCESS_KEY_FILE,
      forcePathStyle: v.SOTTO_KEY_S3_FORCE_PATH_STYLE,
      caFile: v.SOTTO_KEY_S3_CA_FILE,
    },
    VARS,
    problems,
  );
  const data = storage.kind === 's3' ? storage.s3 : undefined;
  const ownEndpoint = v.SOTTO_KEY_S3_ENDPOINT !== undefined;
  const ownCredentials =
    v.SOTTO_KEY_S3_ACCESS_KEY_ID !== undefined ||
    v.SOTTO_KEY_S3_SECRET_ACCESS_KEY !== undefined ||
    v.SOTTO_KEY_S3_SECRET_ACCESS_KEY_FILE !== undefined;
  const endpoint = ownEndpoint || !data ? own.endpoint : data.endpoint;
  const s3: S3Settings = {
    ...own,
    endpoint,
    region: v.SOTTO_KEY_S3_REGION !== undefined || !data ? own.region : data.region,
    // Credentials go as a whole: never a key id of one account with the secret of another.
    credentials: ownCredentials || !data ? own.credentials : data.credentials,
    forcePathStyle:
      v.SOTTO_KEY_S3_FORCE_PATH_STYLE ?? (ownEndpoint || !data ? own.forcePathStyle : data.forcePathStyle),
    ca: v.SOTTO_KEY_S3_CA_FILE !== undefined || !data ? own.ca : data.ca,
  };
  // The same bucket of the same store: allowed only under prefixes that do not contain one another
  // (the audio store's deletions and listings must never reach a key, nor a data backup take one).
  if (data && own.bucket !== '' && own.bucket === data.bucket && endpoint === data.endpoint) {
    const overlap = s3.prefix.startsWith(data.prefix) || data.prefix.startsWith(s3.prefix);
    if (overlap)
      problems.push(
        `SOTTO_KEY_S3_BUCKET: ${own.bucket} is also SOTTO_S3_BUCKET; use a bucket of its own (recommended), or set SOTTO_S3_PREFIX and SOTTO_KEY_S3_PREFIX to prefixes that do not contain one another`,
      );
  }
  return { kind: 's3', s3 };
}
