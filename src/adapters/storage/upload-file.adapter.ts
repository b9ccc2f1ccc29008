import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../../domain/errors.js';
import { OWNER_TAG, sweepScratch } from './scratch-owner.adapter.js';

/**
 * Uploaded audio on local disk, between the upload and the end of its transcription job. Files
 * are streamed (never held in memory), private to the process user, and named by random ids (no
 * client-supplied name ever reaches the filesystem), prefixed with the owning process's tag so a
 * killed process's partial upload is swept within minutes (scratch-owner.adapter.ts).
 */
export class UploadFileStore {
  constructor(private readonly dir: string) {}

  get directory(): string {
    return this.dir;
  }

  /** Streams `source` into a new file; 413 (and no file left) once it passes `maxBytes`. */
  async save(source: Readable, maxBytes: number): Promise<{ path: string; bytes: number }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // A source destroyed before we read it (its request died first) may never end nor fail under
    // pipeline() when its end was already pushed, which would keep the file open for ever.
    if (source.destroyed) throw new AppError('bad_request', 'The upload ended before it was complete');
    const file = path.join(this.dir, `${OWNER_TAG}${randomUUID()}.upload`);
    let bytes = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > maxBytes)
          done(new AppError('payload_too_large', `The file is larger than the limit of ${maxBytes} bytes`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(source, limit, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (err) {
      await this.remove(file);
      // Drain what the client still sends so the request completes and the 413 reaches it.
      source.resume();
      throw err;
    }
    return { path: file, bytes };
  }

  /** Deletes a file we wrote; paths outside our folder are refused (they came from the database). */
  async remove(file: string): Promise<void> {
    const resolved = path.resolve(file);
    if (path.dirname(resolved) !== path.resolve(this.dir)) return;
    await rm(resolved, { force: true });
  }

  /**
   * Removes staged files of processes that are gone (at once) and files of unknown owners no
   * pending job needs and older than `olderThanMs` (an upload still being received on another
   * machine is younger). `keep` null: the owner rule only (the database could not say which
   * files queued jobs need). Run at start and on a schedule.
   */
  sweep(keep: Set<string> | null, olderThanMs: number, now: number): Promise<number> {
    return sweepScratch(this.dir, { olderThanMs, now, ...(keep ? { keep } : { byAge: false }) });
  }
}
