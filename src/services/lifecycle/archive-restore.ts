import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { ArchiveStore } from '../../adapters/storage/archive-store.adapter.js';
import type { AudioBlobStore } from '../../adapters/storage/audio-blob.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { recordingArchiveRepository as archiveRepo } from '../../repositories/lifecycle/recording-archive.repository.js';
import { recordingAudioRepository } from '../../repositories/recordings/recording-audio.repository.js';
import { openArchiveObject } from './archive-object.js';
import { contentKeyLocation } from '../recordings/audio-store.service.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { titleLocation, transcriptLocation } from '../recordings/recording.service.js';
import { originalTranscriptLocation, speakerNamesLocation } from '../recordings/transcript.service.js';
import { indexRecording } from '../search/search-index.service.js';

/** What ArchiveRestorer works with (ArchiveService passes its own deps). */
export interface ArchiveRestorerDeps {
  db: Database;
  keys: KeyService;
  audit: Pick<AuditService, 'record'>;
  store: ArchiveStore;
  blobs: AudioBlobStore;
  clock: Clock;
  logger: Pick<Logger, 'warn'>;
}

/**
 * Brings an archived recording back (ArchiveService.restore, docs/lifecycle.md): blob first, one
 * transaction (archive row taken, rows re-inserted), archive object removed after the commit.
 * The caller has checked the actor's permission.
 */
export class ArchiveRestorer {
  constructor(private readonly d: ArchiveRestorerDeps) {}

  /**
   * POST /org/archive/:id/restore: the recording comes back under its own id with the same
   * transcript, original, edit revision and audio; audited; the archive item is then removed.
   * If the owner has left the org, the restoring admin becomes the owner (audited).
   */
  async restore(actor: Actor, archiveId: string): Promise<{ recordingId: string }> {
    const row = await withTenant(this.d.db, actor, (tx) => archiveRepo.find(tx, archiveId));
    if (!row) throw notFound('Archived recording');
    const sealed = await this.readPart(row.orgId, row.id, 'object', row.contentSha256);
    const content = await withTenant(this.d.db, actor, (tx) =>
      openArchiveObject(this.d.keys, tx, row.orgId, row.id, sealed),
    );
    const recId = content.recording.id;
    if (content.audio) {
      const source = await this.d.store.get(row.orgId, row.id, 'audio');
      if (!source) throw new AppError('internal', 'archived audio part is missing');
      // Hashed while copied: a swapped or damaged audio part is refused (the item stays).
      const hash = createHash('sha256');
      const tap = new PassThrough();
      tap.on('data', (c: Buffer) => hash.update(c));
      await this.d.blobs.write(row.orgId, recId, source, tap);
      if (hash.digest('hex') !== row.audioSha256) {
        const claimed = await withTenant(this.d.db, actor, (tx) => recordingAudioRepository.find(tx, recId));
        if (!claimed) await this.d.blobs.remove(row.orgId, recId);
        this.d.logger.warn(
          { orgId: row.orgId, archiveId: row.id },
          'archived audio part does not match its record',
        );
        throw new AppError('decryption_failed', 'archived audio does not match its record');
      }
    }
    try {
      await withTenant(this.d.db, actor, async (tx) => {
        if (!(await archiveRepo.take(tx, row.id))) throw notFound('Archived recording');
        const r = content.recording;
        const keepOwner = await archiveRepo.isMember(tx, r.ownerId);
        const ownerId = keepOwner ? r.ownerId : actor.userId;
        const titleEnc = r.title
          ? await this.d.keys.encrypt(tx, titleLocation(row.orgId, recId), r.title)
          : null;
        await archiveRepo.insertRecording(tx, row.orgId, { ...r, ownerId, titleEnc }, this.d.clock.now());
        const t = content.transcript;
        if (t)
          await archiveRepo.insertTranscript(tx, row.orgId, recId, {
            revision: t.revision,
            createdAt: t.createdAt,
            updatedAt: t.updatedAt,
            bodyEnc: await this.d.keys.encrypt(tx, transcriptLocation(row.orgId, recId), t.body),
            speakerNamesEnc: t.speakerNames
              ? await this.d.keys.encrypt(tx, speakerNamesLocation(row.orgId, recId), t.speakerNames)
              : null,
            originalBodyEnc: t.originalBody
              ? await this.d.keys.encrypt(tx, originalTranscriptLocation(row.orgId, recId), t.originalBody)
              : null,
          });
        // Searchable again, in the same transaction (docs/search.md).
        await indexRecording(tx, this.d.keys, row.orgId, recId);
        if (content.audio)
          await recordingAudioRepository.insert(tx, {
            recordingId: recId,
            orgId: row.orgId,
            contentType: content.audio.contentType,
            plainSize: content.audio.plainSize,
            chunkSize: content.audio.chunkSize,
            contentKeyEnc: await this.d.keys.encrypt(
              tx,
              contentKeyLocation(row.orgId, recId),
              content.audio.contentKey,
            ),
            now: this.d.clock.now(),
          });
        await this.d.audit.record(tx, {
          orgId: actor.orgId,
          actorId: actor.userId,
          actorKind: actor.viaSupportGrant ? 'support' : 'user',
          action: 'recording.restored',
          targetType: 'recording',
          targetId: recId,
          ip: actor.ip,
          details: { archiveId: row.id, ...(keepOwner ? {} : { ownerReassignedFrom: r.ownerId }) },
        });
      });
    } catch (err) {
      // Our blob copy is only ours to remove if no audio row claims it (a concurrent restore won).
      if (content.audio) {
        const claimed = await withTenant(this.d.db, actor, (tx) => recordingAudioRepository.find(tx, recId));
        if (!claimed) await this.d.blobs.remove(row.orgId, recId);
      }
      throw err;
    }
    await this.d.store.remove(row.orgId, row.id);
    return { recordingId: recId };
  }

  /** A stored part, checked against the hash its row recorded (a swapped or damaged object is refused). */
  private async readPart(orgId: string, archiveId: string, part: 'object', sha256: string): Promise<Buffer> {
    const stream = await this.d.store.get(orgId, archiveId, part);
    if (!stream) throw new AppError('internal', 'archive object is missing');
    const bytes = await buffer(stream);
    if (createHash('sha256').update(bytes).digest('hex') !== sha256)
      throw new AppError('decryption_failed', 'archive object does not match its record');
    return bytes;
  }
}
