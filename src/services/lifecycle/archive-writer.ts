import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { keyVersionOf } from '../../crypto/envelope.js';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import type { ArchiveStore, StoredPart } from '../../adapters/storage/archive-store.adapter.js';
import type { AudioBlobStore } from '../../adapters/storage/audio-blob.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { recordingArchiveRepository as archiveRepo } from '../../repositories/lifecycle/recording-archive.repository.js';
import { recordingAudioRepository } from '../../repositories/recordings/recording-audio.repository.js';
import { archiveTitleLocation, collectArchivable, sealArchiveObject } from './archive-object.js';
import type { AudioStoreService } from '../recordings/audio-store.service.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';

/** What ArchiveWriter works with (ArchiveService passes its own deps). */
export interface ArchiveWriterDeps {
  db: Database;
  keys: KeyService;
  audit: Pick<AuditService, 'record'>;
  store: ArchiveStore;
  audio: Pick<AudioStoreService, 'remove'>;
  blobs: AudioBlobStore;
  clock: Clock;
}

/**
 * Moves one finished recording into the cold archive (ArchiveService, docs/lifecycle.md): the
 * sealed object and audio part are stored first, then one transaction swaps the rows, then the
 * active audio blob goes.
 */
export class ArchiveWriter {
  constructor(private readonly d: ArchiveWriterDeps) {}

  /**
   * Archives one finished recording; returns the archive id, or undefined when the recording is
   * gone, not finished, or changed while its object was written (another node archived or
   * someone edited it: the object is discarded and the next pass tries again).
   */
  async archiveRecording(orgId: string, recordingId: string): Promise<string | undefined> {
    const archiveId = randomUUID();
    const ctx = { orgId, userId: null };
    const snap = await withTenant(this.d.db, ctx, async (tx) => {
      const rec = await archiveRepo.lockRecording(tx, recordingId);
      if (!rec || (rec.status !== 'done' && rec.status !== 'failed')) return undefined;
      const { content, revision } = await collectArchivable(this.d.keys, tx, orgId, rec);
      const plain = content.recording.title;
      return {
        sealed: await sealArchiveObject(this.d.keys, tx, orgId, archiveId, content),
        titleEnc: plain ? await this.d.keys.encrypt(tx, archiveTitleLocation(orgId, archiveId), plain) : null,
        rec,
        stamp: { updatedAt: rec.updatedAt.getTime(), revision },
        audioSize: content.audio ? content.audio.plainSize : undefined,
        blobId: await recordingAudioRepository.blobId(tx, recordingId),
      };
    });
    if (!snap) return undefined;
    let object: StoredPart;
    let audioPart: StoredPart | undefined;
    try {
      object = await this.d.store.put(
        orgId,
        archiveId,
        'object',
        Readable.from([snap.sealed]),
        this.d.clock.now(),
      );
      if (snap.audioSize !== undefined) {
        const head = await this.d.blobs.head(orgId, snap.blobId, 0);
        if (!head) throw new AppError('internal', 'kept audio blob is missing');
        const source =
          head.size === 0 ? Readable.from([]) : this.d.blobs.readRange(orgId, snap.blobId, 0, head.size - 1);
        audioPart = await this.d.store.put(orgId, archiveId, 'audio', source, this.d.clock.now());
      }
      const committed = await withTenant(this.d.db, ctx, async (tx) => {
        const now = await archiveRepo.lockRecording(tx, recordingId);
        const t = await archiveRepo.findTranscript(tx, recordingId);
        if (
          !now ||
          now.updatedAt.getTime() !== snap.stamp.updatedAt ||
          (t?.revision ?? -1) !== snap.stamp.revision
        )
          return false;
        await archiveRepo.insert(
          tx,
          {
            id: archiveId,
            orgId,
            recordingId,
            ownerId: snap.rec.ownerId,
            titleEnc: snap.titleEnc,
            recordingCreatedAt: snap.rec.createdAt,
            archivedAt: this.d.clock.now(),
            archivedByPolicy: true,
            sizeBytes: object.size + (audioPart?.size ?? 0),
            contentSha256: object.sha256,
            audioSizeBytes: audioPart?.size ?? null,
            audioSha256: audioPart?.sha256 ?? null,
          },
          keyVersionOf(snap.sealed),
        );
        if (!(await archiveRepo.deleteRecording(tx, recordingId))) return false;
        await this.d.audit.record(tx, {
          orgId,
          actorId: null,
          actorKind: 'system',
          action: 'recording.archived',
          targetType: 'recording',
          targetId: recordingId,
          details: { archiveId, contentSha256: object.sha256, audioSha256: audioPart?.sha256 ?? null },
        });
        return true;
      });
      if (!committed) {
        await this.d.store.remove(orgId, archiveId);
        return undefined;
      }
    } catch (err) {
      await this.d.store.remove(orgId, archiveId).catch(() => undefined);
      throw err;
    }
    // The rows are gone (the audio row cascaded); the active blob follows.
    await this.d.audio.remove(orgId, recordingId, snap.blobId);
    return archiveId;
  }
}
