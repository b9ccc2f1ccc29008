import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  AudioIntegrityError,
  DEFAULT_CHUNK_SIZE,
  HEADER_BYTES,
  coveringSpan,
  createOpenStream,
  createSealStream,
  makeHeader,
  parseHeader,
  sealedSize,
  type ChunkedHeader,
} from '../../crypto/chunked-cipher.js';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { decideRange } from '../../domain/byte-range.js';
import { AppError, notFound } from '../../domain/errors.js';
import { actorCan } from '../../domain/api-scopes.js';
import type { AudioBlobStore } from '../../adapters/storage/audio-blob.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { orgRepository } from '../../repositories/orgs/org.repository.js';
import { liveRecordingRepository } from '../../repositories/live/live-recording.repository.js';
import {
  recordingAudioRepository,
  type RecordingAudioRow,
} from '../../repositories/recordings/recording-audio.repository.js';
import { recordingRepository } from '../../repositories/recordings/recording.repository.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { requirePermission } from '../orgs/org.service.js';

/**
 * Audio at rest. Every upload is sealed before its job is queued (so queued audio never waits in
 * plaintext), under a random per-file content key wrapped by the org's data key; see
 * docs/audio-storage.md. When a job ends, `settle` keeps the blob only if the org's storeAudio
 * is on; otherwise blob and row go. Decrypted copies exist only as short-lived private work
 * files of the local pipeline (`checkout`) and are deleted when the run ends.
 */
export const contentKeyLocation = (orgId: string, recordingId: string) =>
  ({ orgId, table: 'recording_audio', rowId: recordingId, field: 'content_key' }) as const;

/** A blob written to disk whose row is not stored yet (see `prepare` / `attach`). */
export interface PreparedAudio {
  orgId: string;
  recordingId: string;
  /** The blob's id: the recording id, or a fresh one for a fenced seal (see `seal`). */
  blobId: string;
  contentType: string;
  plainSize: number;
  chunkSize: number;
  contentKey: Buffer;
}

export interface Playback {
  /** 200 whole body, 206 one range, 416 unsatisfiable (no stream). */
  status: 200 | 206 | 416;
  size: number;
  contentType: string;
  range?: { start: number; end: number };
  stream?: Readable;
}

export interface AudioStoreServiceDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  blobs: AudioBlobStore;
  uploads: UploadFileStore;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** Plaintext bytes per sealed chunk (default DEFAULT_CHUNK_SIZE). */
  chunkSize?: number;
}

export class AudioStoreService {
  private readonly chunkSize: number;

  constructor(private readonly deps: AudioStoreServiceDeps) {
    this.chunkSize = deps.chunkSize ?? DEFAULT_CHUNK_SIZE;
  }

  /**
   * Seals a plaintext file (the staged upload) for a recording, then removes the plain file.
   * Outside any transaction. With `fence` (a live stop, docs/live.md "Multiple nodes") the blob
   * gets a fresh id of its own instead of the recording's, and its row is stored only if `fence`,
   * run first in the same transaction, says this writer still holds the recording: a stale writer
   * can only ever write (and then deletes) its own blob, never the audio another one committed.
   * Resolves false when `fence` refused (the blob is gone again).
   */
  async seal(
    orgId: string,
    recordingId: string,
    plainFile: string,
    contentType: string,
    fence?: (tx: Queryable) => Promise<boolean>,
  ): Promise<boolean> {
    let prepared: PreparedAudio | undefined;
    try {
      const blobId = fence ? randomUUID() : recordingId;
      prepared = await this.prepare(orgId, recordingId, plainFile, contentType, blobId);
      const p = prepared;
      const attached = await withTenant(this.deps.db, { orgId, userId: null }, async (tx) => {
        if (fence && !(await fence(tx))) return false;
        await this.attach(tx, p);
        return true;
      });
      if (!attached) await this.discard(p);
      return attached;
    } catch (err) {
      if (prepared) await this.discard(prepared);
      throw err;
    } finally {
      // Sealed or not, the plaintext copy must not stay on disk.
      await this.deps.uploads.remove(plainFile);
    }
  }

  /**
   * First half of sealing, outside any transaction (slow I/O): encrypts the file into the blob.
   * The caller stores the row with `attach` in its own transaction (so the recording, its job
   * and its audio row appear together) and calls `discard` if that transaction fails.
   */
  async prepare(
    orgId: string,
    recordingId: string,
    plainFile: string,
    contentType: string,
    blobId = recordingId,
  ): Promise<PreparedAudio> {
    const { size } = await stat(plainFile);
    const header = makeHeader(size, this.chunkSize);
    const contentKey = randomBytes(32);
    // Bound to the recording (the AAD), whatever the blob's name.
    await this.deps.blobs.write(
      orgId,
      blobId,
      createReadStream(plainFile),
      createSealStream(contentKey, recordingId, header),
    );
    const chunkSize = this.chunkSize;
    return { orgId, recordingId, blobId, contentType, plainSize: size, chunkSize, contentKey };
  }

  /** Second half of sealing: wraps the content key and stores the row (inside the caller's transaction). */
  async attach(tx: Queryable, p: PreparedAudio): Promise<void> {
    const contentKeyEnc = await this.deps.keys.encrypt(
      tx,
      contentKeyLocation(p.orgId, p.recordingId),
      p.contentKey,
    );
    await recordingAudioRepository.insert(tx, {
      recordingId: p.recordingId,
      orgId: p.orgId,
      contentType: p.contentType,
      plainSize: p.plainSize,
      chunkSize: p.chunkSize,
      contentKeyEnc,
      blobId: p.blobId,
      now: this.deps.clock.now(),
    });
  }

  /** Undoes `prepare` when its row was never stored. */
  async discard(p: PreparedAudio): Promise<void> {
    p.contentKey.fill(0);
    await this.deps.blobs.remove(p.orgId, p.blobId);
  }

  /** Decrypting stream of the whole audio, with plaintext size and content type; AppError not_found if none. */
  async openPlain(
    orgId: string,
    recordingId: string,
  ): Promise<{ stream: Readable; size: number; contentType: string }> {
    const found = await withTenant(this.deps.db, { orgId, userId: null }, (tx) =>
      this.unlock(tx, orgId, recordingId),
    );
    if (!found) throw notFound('Audio');
    const stream = await this.decrypting(found, undefined);
    return { stream, size: found.row.plainSize, contentType: found.row.contentType };
  }

  /** Decrypts to a private temp file for the local pipeline; release() deletes it (idempotent). */
  async checkout(orgId: string, recordingId: string): Promise<{ path: string; release(): Promise<void> }> {
    const { stream } = await this.openPlain(orgId, recordingId);
    const file = await this.deps.blobs.writeWorkFile(stream);
    let released = false;
    return {
      path: file,
      release: async () => {
        if (released) return;
        released = true;
        await this.deps.blobs.removeWorkFile(file);
      },
    };
  }

  /** After a job ended (done or permanently failed): keeps the sealed audio if the org's storeAudio is on now, else destroys blob + row. */
  async settle(orgId: string, recordingId: string): Promise<void> {
    const drop = await withTenant(this.deps.db, { orgId, userId: null }, async (tx) => {
      const org = await orgRepository.find(tx, orgId);
      // Kept audio can be retried (RecordingRetryService), so a failed job's live speaker labels
      // stay with it; audio destroyed takes them along.
      if (org?.storeAudio) return undefined;
      const blobId = await recordingAudioRepository.remove(tx, recordingId);
      await liveRecordingRepository.clearSpeakers(tx, recordingId);
      return blobId ?? recordingId;
    });
    if (drop) await this.deps.blobs.remove(orgId, drop);
  }

  /**
   * Destroys blob + row (recording deletion, archiving). Idempotent. `blobId`: the blob a caller
   * read from the row before the row went with its recording (else the row says, or the id).
   */
  async remove(orgId: string, recordingId: string, blobId?: string): Promise<void> {
    const fromRow = await withTenant(this.deps.db, { orgId, userId: null }, (tx) =>
      recordingAudioRepository.remove(tx, recordingId),
    );
    await this.deps.blobs.remove(orgId, fromRow ?? blobId ?? recordingId);
  }

  /**
   * GET /recordings/:id/audio. Visible to whoever may read the transcript; 404 when the
   * recording is invisible, has no audio, or its job is still pending while the org does not keep
   * audio (that audio is transient processing material, about to be destroyed).
   */
  async playback(actor: Actor, recordingId: string, rangeHeader: string | undefined): Promise<Playback> {
    requirePermission(actor, 'recordings.read');
    const found = await withTenant(this.deps.db, actor, async (tx) =>
      (await this.mayPlay(tx, actor, recordingId)) ? this.unlock(tx, actor.orgId, recordingId) : undefined,
    );
    if (!found) throw notFound('Audio');
    const { plainSize: size, contentType } = found.row;
    const decision = decideRange(rangeHeader, size);
    if (decision.kind === 'unsatisfiable') {
      found.key.fill(0);
      return { status: 416, size, contentType };
    }
    if (decision.kind === 'full')
      return { status: 200, size, contentType, stream: await this.decrypting(found, undefined) };
    const range = { start: decision.start, end: decision.end };
    return { status: 206, size, contentType, range, stream: await this.decrypting(found, range) };
  }

  /** Whether `playback` would serve this actor audio now (without unwrapping any key); 404 otherwise. */
  async requirePlayable(actor: Actor, recordingId: string): Promise<void> {
    requirePermission(actor, 'recordings.read');
    const ok = await withTenant(this.deps.db, actor, async (tx) => {
      if (!(await this.mayPlay(tx, actor, recordingId))) return false;
      return (await recordingAudioRepository.find(tx, recordingId)) !== undefined;
    });
    if (!ok) throw notFound('Audio');
  }

  /** The visibility rule of `playback` (the audio row itself is checked by the caller). */
  private async mayPlay(tx: Queryable, actor: Actor, recordingId: string): Promise<boolean> {
    const rec = await recordingRepository.find(tx, recordingId, visibility(actor));
    if (!rec) return false;
    if (rec.status === 'queued' || rec.status === 'processing') {
      const org = await orgRepository.find(tx, actor.orgId);
      if (!org?.storeAudio) return false;
    }
    return true;
  }

  /** DELETE /recordings/:id/audio (owner/admin): destroys kept audio now; audited, ids only. */
  async deleteKept(actor: Actor, recordingId: string): Promise<void> {
    requirePermission(actor, 'org.manage');
    const blob = await withTenant(this.deps.db, actor, async (tx) => {
      const rec = await recordingRepository.find(tx, recordingId, {});
      if (!rec) throw notFound('Recording');
      // A pending job still needs its audio: deleting the recording is the way to stop it.
      if (rec.status === 'queued' || rec.status === 'processing')
        throw new AppError('conflict', 'The recording is still being transcribed');
      const blobId = await recordingAudioRepository.remove(tx, rec.id);
      if (!blobId) throw notFound('Audio');
      await liveRecordingRepository.clearSpeakers(tx, rec.id);
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'recording.audio_deleted',
        targetType: 'recording',
        targetId: rec.id,
        ip: actor.ip,
      });
      return blobId;
    });
    await this.deps.blobs.remove(actor.orgId, blob);
  }

  /** Decrypted work copies of processes that are gone (at once) or of unknown owners, by age. */
  sweepWork(olderThanMs: number, now: number): Promise<number> {
    return this.deps.blobs.sweepWork(olderThanMs, now);
  }

  /**
   * Start-up sweep: removes decrypted work files, blobs no recording_audio row names (a process
   * killed between writing a blob and committing its row, or between deleting a row and its
   * blob; a live stop refused by the fence that died before deleting its own blob), and temp files of interrupted writes — all only when older than `olderThanMs`, so a
   * seal or checkout in progress on another node is never touched.
   */
  async sweep(olderThanMs: number, now: number): Promise<{ work: number; blobs: number }> {
    const work = await this.sweepWork(olderThanMs, now);
    const entries = await this.deps.blobs.list();
    let blobs = 0;
    if (entries.some((e) => now - e.mtimeMs >= olderThanMs)) {
      const kept = await withSystem(this.deps.db, (tx) => recordingAudioRepository.allKeys(tx));
      for (const e of entries) {
        if (now - e.mtimeMs < olderThanMs) continue;
        if (e.recordingId && kept.has(`${e.orgId}/${e.recordingId}`)) continue;
        await this.deps.blobs.removeListed(e);
        blobs++;
      }
    }
    if (work + blobs > 0) this.deps.logger.info({ work, blobs }, 'removed leftover audio files');
    return { work, blobs };
  }

  /** The row and its unwrapped content key (inside the caller's transaction); undefined if no audio. */
  private async unlock(
    tx: Queryable,
    orgId: string,
    recordingId: string,
  ): Promise<{ row: RecordingAudioRow; key: Buffer } | undefined> {
    const row = await recordingAudioRepository.find(tx, recordingId);
    if (!row) return undefined;
    // The row's own ids (lower case) bind the key, whatever case the caller's id came in.
    const key = await this.deps.keys.decrypt(
      tx,
      contentKeyLocation(orgId, row.recordingId),
      row.contentKeyEnc,
    );
    return { row, key };
  }

  /**
   * Checks the blob against its row (header, exact size) and returns a stream that decrypts only
   * the chunks covering `range`. Integrity failures surface as `decryption_failed` (a 500, logged
   * with ids only): tampered audio must never be served.
   */
  private async decrypting(
    found: { row: RecordingAudioRow; key: Buffer },
    range: { start: number; end: number } | undefined,
  ): Promise<Readable> {
    const { row, key } = found;
    const blobId = row.blobId ?? row.recordingId;
    const head = await this.deps.blobs.head(row.orgId, blobId, HEADER_BYTES);
    if (!head) {
      this.deps.logger.warn({ recordingId: row.recordingId }, 'audio blob missing');
      throw notFound('Audio');
    }
    let header: ChunkedHeader;
    try {
      header = parseHeader(head.bytes);
      if (
        header.plainSize !== row.plainSize ||
        header.chunkSize !== row.chunkSize ||
        head.size !== sealedSize(header.plainSize, header.chunkSize)
      )
        throw new AudioIntegrityError('audio blob does not match its record');
    } catch (err) {
      throw integrity(err, row.recordingId, this.deps.logger);
    }
    const r = range ?? { start: 0, end: Math.max(0, row.plainSize - 1) };
    const span = coveringSpan(header, r.start, r.end);
    const source = this.deps.blobs.readRange(row.orgId, blobId, span.fileStart, span.fileEnd);
    // Integrity failures mid-stream become decryption_failed: a 500 before the first byte, a cut
    // connection after it — never unauthenticated audio.
    const open = createOpenStream(key, row.recordingId, header, range, (err) =>
      integrity(err, row.recordingId, this.deps.logger),
    );
    return pipeline(source, open, () => key.fill(0));
  }
}

function integrity<E>(err: E, recordingId: string, logger: Pick<Logger, 'warn'>): E | AppError {
  if (!(err instanceof AudioIntegrityError)) return err;
  logger.warn({ recordingId, code: 'decryption_failed' }, 'audio integrity check failed');
  return new AppError('decryption_failed', undefined, undefined, { cause: err });
}

function visibility(actor: Actor): { ownerId?: string } {
  return actorCan(actor, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}
