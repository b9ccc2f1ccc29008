import { existsSync, readFileSync } from 'node:fs';
import { isLocalHost, readCa } from './backend-tls.js';

/**
 * Where sealed audio blobs, org exports and (by default then) the cold archive live
 * (docs/audio-storage.md#object-storage): the data directory, or any S3-compatible object store.
 * Parsed here once so a bad setting is named at start with every other bad variable.
 */
export interface S3Settings {
  /** https://host[:port] of a self-hosted store (MinIO, Ceph RGW, Garage, R2); unset = AWS. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  /** Key prefix inside the bucket, '' or ending in '/'. */
  prefix: string;
  /** Unset: the SDK's default chain (instance role, web identity…). */
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  forcePathStyle: boolean;
  /** PEM of a private CA for the endpoint's certificate. */
  ca: string | undefined;
}

export type StorageSettings = { kind: 'local' } | { kind: 's3'; s3: S3Settings };

export interface S3Vars {
  SOTTO_ENV: string;
  endpoint?: string | undefined;
  region?: string | undefined;
  bucket?: string | undefined;
  prefix?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  secretAccessKeyFile?: string | undefined;
  forcePathStyle?: boolean | undefined;
  caFile?: string | undefined;
}

// S3 bucket naming rules (3–63 lower-case letters, digits, dots, hyphens): a typo is named at start.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^[A-Za-z0-9!_.*'()/-]{0,256}$/;

/**
 * One S3 target. `names` maps each setting to its variable, so that a second target (a key
 * store of its own, SOTTO_KEY_S3_*) can reuse the same rules and still name its own variables.
 */
export function s3Settings(
  v: S3Vars,
  names: Record<Exclude<keyof S3Vars, 'SOTTO_ENV'>, string>,
  problems: string[],
): S3Settings {
  if (!v.bucket) problems.push(`${names.bucket}: required with object storage`);
  else if (!BUCKET.test(v.bucket))
    problems.push(
      `${names.bucket}: not a valid bucket name (3–63 lower-case letters, digits, dots, hyphens)`,
    );
  const prefix = v.prefix ?? '';
  if (!PREFIX.test(prefix) || prefix.startsWith('/') || prefix.includes('//') || prefix.includes('..'))
    problems.push(`${names.prefix}: letters, digits and !_.*'()/- only, no leading /, no // or ..`);
  let endpoint: string | undefined;
  if (v.endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(v.endpoint);
    } catch {
      problems.push(`${names.endpoint}: not a URL`);
    }
    if (url) {
      if (url.protocol !== 'https:' && url.protocol !== 'http:')
        problems.push(`${names.endpoint}: must be https:// (or http:// on this machine)`);
      else if (
        url.username ||
        url.password ||
        url.search ||
        url.hash ||
        (url.pathname !== '/' && url.pathname !== '')
      )
        problems.push(
          `${names.endpoint}: only scheme, host and port (credentials go in their own variables)`,
        );
      // Sealed bytes are safe in transit, but the credentials' signatures and the bucket's
      // contents list are not for a network to read; a trusted-network override would be a new knob.
      else if (v.SOTTO_ENV === 'production' && url.protocol === 'http:' && !isLocalHost(url.hostname))
        problems.push(
          `${names.endpoint}: ${url.hostname} is not on this machine: use https:// (and ${names.caFile} for a private CA)`,
        );
      endpoint = url.origin;
      if (v.caFile !== undefined && url.protocol === 'http:')
        problems.push(`${names.caFile}: set, but ${names.endpoint} is http://`);
    }
  }
  let secret = v.secretAccessKey;
  if (v.secretAccessKey !== undefined && v.secretAccessKeyFile !== undefined)
    problems.push(`${names.secretAccessKey} and ${names.secretAccessKeyFile} are both set: choose one`);
  else if (v.secretAccessKeyFile !== undefined) {
    if (!existsSync(v.secretAccessKeyFile))
      problems.push(`${names.secretAccessKeyFile}: ${v.secretAccessKeyFile} does not exist`);
    else
      try {
        secret = readFileSync(v.secretAccessKeyFile, 'utf8').trim();
      } catch (err) {
        problems.push(`${names.secretAccessKeyFile}: ${v.secretAccessKeyFile}: ${(err as Error).message}`);
      }
  }
  if ((v.accessKeyId === undefined) !== (secret === undefined))
    problems.push(
      `${names.accessKeyId} and ${names.secretAccessKey}: set both, or neither (the SDK's default credentials)`,
    );
  const ca = v.caFile !== undefined ? readCa(names.caFile, v.caFile, problems) : undefined;
  return {
    endpoint,
    region: v.region ?? 'us-east-1',
    bucket: v.bucket ?? '',
    prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
    credentials:
      v.accessKeyId !== undefined && secret !== undefined
        ? { accessKeyId: v.accessKeyId, secretAccessKey: secret }
        : undefined,
    forcePathStyle: v.forcePathStyle ?? endpoint !== undefined,
    ca,
  };
}

/** SOTTO_STORAGE and its SOTTO_S3_* settings (the S3 variables are refused with local storage). */
export function storageSettings(
  v: {
    SOTTO_ENV: string;
    SOTTO_STORAGE: 'local' | 's3';
    SOTTO_S3_ENDPOINT?: string | undefined;
    SOTTO_S3_REGION?: string | undefined;
    SOTTO_S3_BUCKET?: string | undefined;
    SOTTO_S3_PREFIX?: string | undefined;
    SOTTO_S3_ACCESS_KEY_ID?: string | undefined;
    SOTTO_S3_SECRET_ACCESS_KEY?: string | undefined;
    SOTTO_S3_SECRET_ACCESS_KEY_FILE?: string | undefined;
    SOTTO_S3_FORCE_PATH_STYLE?: boolean | undefined;
    SOTTO_S3_CA_FILE?: string | undefined;
  },
  problems: string[],
): StorageSettings {
  const vars = {
    endpoint: 'SOTTO_S3_ENDPOINT',
    region: 'SOTTO_S3_REGION',
    bucket: 'SOTTO_S3_BUCKET',
    prefix: 'SOTTO_S3_PREFIX',
    accessKeyId: 'SOTTO_S3_ACCESS_KEY_ID',
    secretAccessKey: 'SOTTO_S3_SECRET_ACCESS_KEY',
    secretAccessKeyFile: 'SOTTO_S3_SECRET_ACCESS_KEY_FILE',
    forcePathStyle: 'SOTTO_S3_FORCE_PATH_STYLE',
    caFile: 'SOTTO_S3_CA_FILE',
  } as const;
  if (v.SOTTO_STORAGE === 'local') {
    const stray = Object.values(vars).filter((name) => v[name] !== undefined);
    // A bucket configured but not used would look like a working object store to the operator.
    if (stray.length > 0) problems.push(`${stray.join(', ')}: set, but SOTTO_STORAGE is not s3`);
    return { kind: 'local' };
  }
  const s3 = s3Settings(
    {
      SOTTO_ENV: v.SOTTO_ENV,
      endpoint: v.SOTTO_S3_ENDPOINT,
      region: v.SOTTO_S3_REGION,
      bucket: v.SOTTO_S3_BUCKET,
      prefix: v.SOTTO_S3_PREFIX,
      accessKeyId: v.SOTTO_S3_ACCESS_KEY_ID,
      secretAccessKey: v.SOTTO_S3_SECRET_ACCESS_KEY,
      secretAccessKeyFile: v.SOTTO_S3_SECRET_ACCESS_KEY_FILE,
      forcePathStyle: v.SOTTO_S3_FORCE_PATH_STYLE,
      caFile: v.SOTTO_S3_CA_FILE,
    },
    vars,
    problems,
  );
  return { kind: 's3', s3 };
}
