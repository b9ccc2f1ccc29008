import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OWNER_TAG, sweepScratch } from './scratch-owner.adapter.js';
import type { SealedObjectStore } from './sealed-file-store.adapter.js';

/**
 * Sealed audio blobs, and private work files `<dataDir>/tmp/work/*` holding decrypted copies for
 * the local pipeline. The blobs are a SealedObjectStore: on local disk
 * `<dataDir>/audio/<orgId>/<recordingId>.bin` (0600, folders 0700; ids checked, temp + fsync +
 * rename + folder fsync, so a reader never sees a half-written blob and a crash leaves only a
 * `.tmp` file the start-up sweep removes), or `audio/<orgId>/<recordingId>.bin` in an S3 bucket
 * (SOTTO_STORAGE=s3). This adds the work files (always local). A blob's id is its recording's id,
 * except for a live recording's audio: its stop seals under a fresh id that the audio row names
 * (recording_audio.blob_id), so that a stale node can never overwrite it (docs/live.md). The
 * `recordingId` parameters below are blob ids in that sense.
 */
export interface BlobEntry {
  orgId: string;
  recordingId: string | undefined;
  file: string;
  mtimeMs: number;
}

export class AudioBlobStore {
  constructor(
    private readonly store: SealedObjectStore,
    private readonly workDir: string,
  ) {}

  /** SHA-256 (hex) of the sealed blob (deletion receipts); undefined when there is none. */
  sha256(orgId: string, recordingId: string): Promise<string | undefined> {
    return this.store.sha256(orgId, recordingId);
  }

  /** Streams `source` through `transform` into the blob, atomically and durably. */
  write(orgId: string, recordingId: string, source: Readable, transform: Transform): Promise<void> {
    return this.store.write(orgId, recordingId, source, [transform]);
  }

  /** Reads the first `n` bytes (the header); undefined when the blob does not exist. */
  head(orgId: string, recordingId: string, n: number): Promise<{ bytes: Buffer; size: number } | undefined> {
    return this.store.head(orgId, recordingId, n);
  }

  /** Sealed bytes [start, end] (inclusive) as a stream. */
  readRange(orgId: string, recordingId: string, start: number, end: number): Readable {
    return this.store.readRange(orgId, recordingId, start, end);
  }

  remove(orgId: string, recordingId: string): Promise<void> {
    return this.store.remove(orgId, recordingId);
  }

  /** Streams `source` into a new private work file (removed again if the stream fails). */
  async writeWorkFile(source: Readable): Promise<string> {
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
    const file = path.join(this.workDir, `${OWNER_TAG}${randomUUID()}.audio`);
    try {
      await pipeline(source, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    return file;
  }

  /** Deletes a work file; paths outside the work folder are refused. */
  async removeWorkFile(file: string): Promise<void> {
    const resolved = path.resolve(file);
    if (path.dirname(resolved) !== path.resolve(this.workDir)) return;
    await rm(resolved, { force: true });
  }

  /**
   * Removes the work files of processes that are gone (at once), and those of unknown owners
   * older than `olderThanMs`; a live process's checkout is never touched (scratch-owner.adapter.ts).
   */
  sweepWork(olderThanMs: number, now: number): Promise<number> {
    return sweepScratch(this.workDir, { olderThanMs, now });
  }

  /**
   * Every file under the audio folder: blobs (recordingId set) and anything else (temp files of
   * interrupted writes, strays; recordingId undefined) for the sweep to judge.
   */
  async list(): Promise<BlobEntry[]> {
    return (await this.store.list()).map(({ id, ...e }) => ({ ...e, recordingId: id }));
  }

  /** Deletes an entry `list()` returned (only inside the audio store). */
  removeListed(entry: BlobEntry): Promise<void> {
    return this.store.removeListed(entry.file);
  }
}
