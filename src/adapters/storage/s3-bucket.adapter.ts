import { Agent } from 'node:https';
import { PassThrough, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { StorageCheck } from './sealed-file-store.adapter.js';
import { rechunk } from './stream-chunks.js';

/**
 * One bucket (and key prefix) of an S3-compatible object store, through the official SDK. Keys
 * given here are relative to the prefix. Only sealed bytes ever reach it; credentials stay in the
 * client and never in a log line or an error message (errors carry the S3 code only).
 * Every write is a multipart upload (see `put`), so a reader never sees half an object.
 */
export const PART_BYTES = 8 * 1024 * 1024;

/** What the client needs (config's S3Settings, parsed from SOTTO_S3_*). */
export interface S3BucketSettings {
  endpoint: string | undefined;
  region: string;
  bucket: string;
  prefix: string;
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  forcePathStyle: boolean;
  ca: string | undefined;
}

export interface S3ObjectInfo {
  /** Relative to the prefix. */
  key: string;
  size: number;
  mtimeMs: number;
}

export class S3Bucket {
  private readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;

  constructor(settings: S3BucketSettings) {
    this.bucket = settings.bucket;
    this.prefix = settings.prefix;
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
      // Checksums only where S3 requires them: several S3-compatible stores reject the newer
      // default trailing checksums. Integrity comes from AES-GCM on every chunk anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      ...(settings.ca
        ? { requestHandler: { httpsAgent: new Agent({ ca: settings.ca, keepAlive: true }) } }
        : {}),
    });
  }

  private full(key: string): string {
    return `${this.prefix}${key}`;
  }

  /**
   * Streams `source` through `transforms` into `key` as a multipart upload, whatever its size:
   * the object appears only at CompleteMultipartUpload, an explicit commit, so a cut connection
   * or a failed source never leaves a truncated object, even on a store whose plain PUT would
   * (one part is a valid multipart upload). Parts are buffers, so the SDK's retries resend them.
   * On failure the upload is aborted; a killed process leaves an incomplete upload that is never
   * visible and that a bucket lifecycle rule removes (docs/audio-storage.md).
   */
  async put(key: string, source: Readable, transforms: Transform[] = []): Promise<void> {
    const Key = this.full(key);
    const body = new PassThrough();
    const feeding = pipeline([source, ...transforms, body]);
    // Read below; its rejection is the source's failure, reported once through `body`.
    feeding.catch(() => undefined);
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }));
      uploadId = created.UploadId;
      if (!uploadId) throw new Error('object store returned no upload id');
      const parts: { ETag: string; PartNumber: number }[] = [];
      for await (const part of rechunk(body, PART_BYTES)) {
        const PartNumber = parts.length + 1;
        const res = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key, UploadId: uploadId, PartNumber, Body: part }),
        );
        parts.push({ ETag: res.ETag ?? '', PartNumber });
      }
      await feeding;
      if (parts.length === 0) {
        const res = await this.client.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key,
            UploadId: uploadId,
            PartNumber: 1,
            Body: Buffer.alloc(0),
          }),
        );
        parts.push({ ETag: res.ETag ?? '', PartNumber: 1 });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (err) {
      body.destroy();
      if (uploadId)
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      throw err;
    }
  }

  /** Size and time of `key`; undefined when it does not exist. */
  async stat(key: string): Promise<{ size: number; mtimeMs: number } | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return { size: res.ContentLength ?? 0, mtimeMs: res.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The object's bytes [start, end] (inclusive), or all of it; undefined when it does not exist. */
  async get(key: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      // A store that ignored the Range would hand back other bytes than asked for: refused.
      if (range && !res.ContentRange?.startsWith(`bytes ${range.start}-`)) {
        (res.Body as Readable | undefined)?.destroy();
        throw new Error('object store ignored the byte range');
      }
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Idempotent: deleting a missing key succeeds (S3 semantics). */
  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
  }

  /** Every object under `keyPrefix` (paginated). */
  async list(keyPrefix: string): Promise<S3ObjectInfo[]> {
    const out: S3ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(keyPrefix),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const o of res.Contents ?? []) {
        if (!o.Key?.startsWith(this.prefix)) continue;
        out.push({
          key: o.Key.slice(this.prefix.length),
          size: o.Size ?? 0,
          mtimeMs: o.LastModified?.getTime() ?? 0,
        });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** Deletes every object under `keyPrefix`; returns how many. */
  async deletePrefix(keyPrefix: string): Promise<number> {
    const objects = await this.list(keyPrefix);
    // One DELETE each rather than DeleteObjects: that call needs a Content-MD5 or checksum
    // header, which not every S3-compatible store accepts in the same way.
    for (const o of objects) await this.delete(o.key);
    return objects.length;
  }

  /** Whether the bucket exists and these credentials may use it. */
  async check(): Promise<StorageCheck> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return 'ok';
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return 'no_bucket';
      if (status === 401 || status === 403) return 'denied';
      return 'failed';
    }
  }

  /**
   * The bucket's versioning: 'off' (never enabled), 'on' (Enabled or Suspended: deleted objects
   * may survive as older versions), or 'unknown' (the store does not say, or these credentials may
   * not ask). For the key store, where a deleted object must really be gone.
   */
  async versioning(): Promise<'off' | 'on' | 'unknown'> {
    try {
      const res = await this.client.send(new GetBucketVersioningCommand({ Bucket: this.bucket }));
      return res.Status === 'Enabled' || res.Status === 'Suspended' ? 'on' : 'off';
    } catch {
      return 'unknown';
    }
  }

  close(): void {
    this.client.destroy();
  }
}

function statusOf(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

/** A missing object; a missing bucket is an error, never "no such object". */
function isNotFound(err: unknown): boolean {
  if (!(err instanceof Error) || err.name === 'NoSuchBucket') return false;
  return statusOf(err) === 404 || err.name === 'NoSuchKey' || err.name === 'NotFound';
}
