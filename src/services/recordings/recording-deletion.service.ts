import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import { notFound } from '../../domain/errors.js';
import type { AudioBlobStore } from '../../adapters/storage/audio-blob.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { LiveBus } from '../../adapters/redis/live-bus.types.js';
import { deletionRepository } from '../../repositories/orgs/deletion.repository.js';
import { recordingAudioRepository } from '../../repositories/recordings/recording-audio.repository.js';
import { recordingJobRepository } from '../../repositories/transcription/recording-job.repository.js';
import { recordingRepository, type Visibility } from '../../repositories/recordings/recording.repository.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AuditEntry, AuditService } from '../operations/audit.service.js';
import type { OrgExportInvalidation } from '../org-export/org-export-invalidation.js';
import { enqueueWebhooks, recordingEvent } from '../webhooks/webhook-outbox.js';

/**
 * Hard deletion of one recording with a deletion receipt (docs/lifecycle.md). Everything goes at
 * once — rows (recording, transcript with its original and speaker names, job, audio row, live
 * spool row, live speaker labels, search index row), the sealed audio blob, a plain staged upload of an old job,
 * the live spool files, the live backlog beside the live bus — and no copy is kept anywhere. The
 * receipt, in the org's audit chain as `recording.deleted`, says what existed, when, by whom, and
 * the SHA-256 of each stored *ciphertext* (never of plaintext, which could be confirmed by
 * guessing), computed before deleting.
 *
 * The transcript's "report" is computed from the transcript on request and never stored, so it
 * goes with the transcript. A job working on the recording loses its lease with the job row: its
 * heartbeat aborts the run, its result is refused (`complete` checks the lease) and its decrypted
 * work copy is removed when the run ends.
 *
 * The org's ready or building exports (copies of its data) expire in the same transaction and
 * their files go after the commit (`exportsInvalidated` in the receipt).
 */
export interface DeletionContext {
  orgId: string;
  actorId: string | null;
  actorKind: AuditEntry['actorKind'];
  ip?: string | undefined;
  /** Why (receipt detail): the user asked, or their account was deleted. */
  reason: 'requested' | 'account_deleted';
}

export interface RecordingReceipt {
  recordingId: string;
  parts: string[];
  sha256: Record<string, string>;
  /** Search index rows of the recording counted after the delete, in its transaction (0). */
  searchIndexRowsLeft: number;
  /** Ready/building org exports expired because they may hold the recording. */
  exportsInvalidated: number;
}

interface SpoolFiles {
  remove(orgId: string, recordingId: string): Promise<void>;
}

export interface RecordingDeletionServiceDeps {
  db: Database;
  audit: Pick<AuditService, 'record'>;
  blobs: Pick<AudioBlobStore, 'sha256' | 'remove'>;
  uploads: Pick<UploadFileStore, 'remove'>;
  spools: SpoolFiles;
  clock: Clock;
  exports: Pick<OrgExportInvalidation, 'inTransaction' | 'removeFiles'>;
  bus: Pick<LiveBus, 'bury'>;
}

export class RecordingDeletionService {
  constructor(private readonly deps: RecordingDeletionServiceDeps) {}

  async destroy(
    ctx: DeletionContext,
    recordingId: string,
    visibility: Visibility,
  ): Promise<RecordingReceipt> {
    const tenant = { orgId: ctx.orgId, userId: ctx.actorId };
    // Visibility first (a recording the caller may not see is 404, and is not even hashed).
    const { id, blob } = await withTenant(this.deps.db, tenant, async (tx) => {
      const row = await recordingRepository.find(tx, recordingId, visibility);
      if (!row) throw notFound('Recording');
      return { id: row.id, blob: await recordingAudioRepository.blobId(tx, row.id) };
    });
    // The sealed blob is hashed outside any transaction (slow I/O); blobs are never rewritten.
    const audioBlob = await this.deps.blobs.sha256(ctx.orgId, blob);
    let blobNow = blob;
    const { receipt, stagedFile, expiredExports } = await withTenant(this.deps.db, tenant, async (tx) => {
      const row = await recordingRepository.find(tx, id, visibility);
      const digests = row && (await deletionRepository.ciphertextDigests(tx, id));
      if (!row || !digests) throw notFound('Recording');
      const stagedFile = await recordingJobRepository.audioPath(tx, id);
      // A live stop may have committed its audio since (under a blob id of its own).
      blobNow = await recordingAudioRepository.blobId(tx, id);
      // The job row before the recording: a worker's claim, renewal and completion lock the job
      // and then the recording, and a deletion that took them the other way round (the
      // recording, then the job by its cascade) deadlocked with it on PostgreSQL (40P01, a 500).
      // In the worker's order the deletion waits for that transaction, then goes on.
      await recordingJobRepository.remove(tx, id);
      await recordingRepository.delete(tx, id);
      const searchIndexRowsLeft = await deletionRepository.searchIndexRows(tx, id);
      await enqueueWebhooks(tx, recordingEvent(ctx.orgId, id, 'recording.deleted', this.deps.clock.now()));
      const sha256: Record<string, string> = {};
      const add = (name: string, v: string | null | undefined) => {
        if (v) sha256[name] = v;
      };
      add('title', digests.title);
      add('transcript', digests.transcript);
      add('originalTranscript', digests.originalTranscript);
      add('speakerNames', digests.speakerNames);
      add('audioBlob', audioBlob);
      add('audioContentKey', digests.audioContentKey);
      add('liveSpoolKey', digests.liveSpoolKey);
      add('liveSpeakers', digests.liveSpeakers);
      add('searchIndexDoc', digests.searchIndexDoc);
      add('searchIndexTokens', digests.searchIndexTokens);
      const parts = [
        'recording',
        ...(digests.transcript ? ['transcript', 'report'] : []),
        ...(digests.originalTranscript ? ['originalTranscript'] : []),
        ...(audioBlob || digests.audioContentKey ? ['audio'] : []),
        ...(digests.liveSpoolKey || row.status === 'live' ? ['liveSpool'] : []),
        ...(digests.liveSpeakers ? ['liveSpeakers'] : []),
        ...(digests.searchIndexDoc ? ['searchIndex'] : []),
        ...(digests.hasJob ? ['job'] : []),
      ];
      const expiredExports = await this.deps.exports.inTransaction(tx, ctx.orgId, 'recording_deleted');
      await this.deps.audit.record(tx, {
        orgId: ctx.orgId,
        actorId: ctx.actorId,
        actorKind: ctx.actorKind,
        action: 'recording.deleted',
        targetType: 'recording',
        targetId: id,
        ip: ctx.ip,
        details: {
          reason: ctx.reason,
          status: row.status,
          parts,
          sha256,
          searchIndexRowsLeft,
          exportsInvalidated: expiredExports.length,
        },
      });
      return {
        receipt: {
          recordingId: id,
          parts,
          sha256,
          searchIndexRowsLeft,
          exportsInvalidated: expiredExports.length,
        },
        stagedFile,
        expiredExports,
      };
    });
    // The rows are gone (committed): files now. Each removal is idempotent; the start-up sweeps
    // remove anything a crash right here would leave (blobs without a row, stale spools).
    if (stagedFile) await this.deps.uploads.remove(stagedFile);
    await this.deps.blobs.remove(ctx.orgId, blobNow);
    if (blobNow !== blob) await this.deps.blobs.remove(ctx.orgId, blob);
    await this.deps.spools.remove(ctx.orgId, id);
    await this.deps.exports.removeFiles(ctx.orgId, expiredExports);
    // A live (or just stopped) recording's backlog beside the live bus: sealed finals and
    // partials, in memory or Redis. Deleted means no late viewer, and no copy left to expire; an
    // ingest node still streaming it until its next check must not rebuild it (a tombstone).
    // Never throws: the deletion has committed, a Redis outage must not turn it into a 500.
    await this.deps.bus.bury(id);
    return receipt;
  }
}
