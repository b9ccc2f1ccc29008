import { createHash, randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { Logger } from 'pino';
import { keyVersionOf } from '../crypto/envelope.js';
import type { Database } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { backoffMs } from '../domain/backoff.js';
import { AppError, notFound } from '../domain/errors.js';
import type { ArchiveStore, StoredPart } from '../repositories/archive-store.repository.js';
import type { AudioBlobRepository } from '../repositories/audio-blob.repository.js';
import type { Clock } from '../repositories/clock.repository.js';
import { recordingArchiveRepository as archiveRepo } from '../repositories/recording-archive.repository.js';
import { recordingAudioRepository } from '../repositories/recording-audio.repository.js';
import {
  archiveTitleLocation,
  collectArchivable,
  openArchiveObject,
  sealArchiveObject,
} from './archive-object.js';
import { contentKeyLocation, type AudioStoreService } from './audio-store.service.js';
import type { ArchiveDeletionContext, ArchiveItemView, DeletionReceipt } from './archive.types.js';
import type { AuditService } from './audit.service.js';
import type { KeyService } from './key.service.js';
import type { OrgExportInvalidation } from './org-export-invalidation.js';
import { requirePermission } from './org.service.js';
import { titleLocation, transcriptLocation } from './recording.service.js';
import type { ScheduledTask } from './scheduler.service.js';
import { originalTranscriptLocation, speakerNamesLocation } from './transcript.service.js';
import { indexRecording } from './search-index.service.js';

/**
 * Cold archive (docs/lifecycle.md). Retention moves finished recordings past their org's window
 * into the archive store as one sealed object each; admins list, restore or destroy them.
 *
 * Order of writes, so a crash never loses a recording: the sealed object (and audio part) is
 * stored durably first; then ONE transaction re-checks the recording is unchanged, inserts the
 * archive row and hard-deletes the active rows; the active audio blob goes after the commit. A
 * crash in between leaves at worst an object without a row (the sweep removes it) or an active
 * blob without a row (the audio sweep removes it). Restore mirrors it: blob first, one
 * transaction (archive row taken, rows re-inserted), archive object removed after the commit.
 */
export type { ArchiveDeletionContext, ArchiveItemView, DeletionReceipt } from './archive.types.js';

/** Recordings archived per retention pass at most (the next pass continues). */
const RETENTION_BATCH = 500;
/** An archive part without a row is only swept when older than this (a write may be in progress). */
const SWEEP_MARGIN_MS = 3600_000;
/** A recording whose archiving failed is retried after 1 h, doubling per failure, at most 7 days. */
const ARCHIVE_RETRY = { baseMs: 3600_000, capMs: 7 * 24 * 3600_000 };

export class ArchiveService {
  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly store: ArchiveStore,
    private readonly audio: Pick<AudioStoreService, 'remove'>,
    private readonly blobs: AudioBlobRepository,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
    private readonly exports: Pick<OrgExportInvalidation, 'inTransaction' | 'removeFiles'>,
  ) {}

  /** The maintenance tasks this service registers with the scheduler. */
  tasks(): ScheduledTask[] {
    return [
      { name: 'retention', run: async () => void (await this.runRetention()) },
      { name: 'archive-sweep', run: async () => void (await this.sweep(SWEEP_MARGIN_MS)) },
    ];
  }

  /**
   * One retention pass over every org: finished recordings older than the org's retentionDays
   * (by created time, or restore time) are archived; live/queued/processing ones are never
   * touched. One audit entry per org with the count and ids. A recording that fails to archive
   * is remembered and skipped until its retry time (backing off), so it cannot block the others.
   */
  async runRetention(limit = RETENTION_BATCH): Promise<{ archived: number }> {
    const now = this.clock.now();
    const due = await withSystem(this.db, (tx) => archiveRepo.expired(tx, now, limit));
    const byOrg = new Map<string, { recordingIds: string[]; archiveIds: string[] }>();
    for (const { orgId, id } of due) {
      const archiveId = await this.archiveRecording(orgId, id).catch(async (err: unknown) => {
        // One broken recording must not stop the others; ids only in the log.
        const failures = await withTenant(this.db, { orgId, userId: null }, (tx) =>
          archiveRepo.markArchiveFailed(
            tx,
            id,
            // One node runs retention and each recording has its own retry time: no herd to spread,
            // so the backoff is taken at its ceiling (1 h, doubling, at most 7 days).
            (failures) => new Date(now.getTime() + backoffMs(ARCHIVE_RETRY, failures, () => 1)),
          ),
        ).catch(() => undefined);
        this.logger.warn({ err, orgId, recordingId: id, failures }, 'archiving a recording failed');
        return undefined;
      });
      if (!archiveId) continue;
      const entry = byOrg.get(orgId) ?? { recordingIds: [], archiveIds: [] };
      entry.recordingIds.push(id);
      entry.archiveIds.push(archiveId);
      byOrg.set(orgId, entry);
    }
    for (const [orgId, e] of byOrg)
      await withTenant(this.db, { orgId, userId: null }, (tx) =>
        this.audit.record(tx, {
          orgId,
          actorId: null,
          actorKind: 'system',
          action: 'retention.archived',
          targetType: 'org',
          targetId: orgId,
          details: { count: e.recordingIds.length, recordingIds: e.recordingIds, archiveIds: e.archiveIds },
        }),
      );
    let archived = 0;
    for (const e of byOrg.values()) archived += e.recordingIds.length;
    if (archived > 0) this.logger.info({ archived, orgs: byOrg.size }, 'retention archived recordings');
    return { archived };
  }

  /**
   * Archives one finished recording; returns the archive id, or undefined when the recording is
   * gone, not finished, or changed while its object was written (another node archived or
   * someone edited it: the object is discarded and the next pass tries again).
   */
  async archiveRecording(orgId: string, recordingId: string): Promise<string | undefined> {
    const archiveId = randomUUID();
    const ctx = { orgId, userId: null };
    const snap = await withTenant(this.db, ctx, async (tx) => {
      const rec = await archiveRepo.lockRecording(tx, recordingId);
      if (!rec || (rec.status !== 'done' && rec.status !== 'failed')) return undefined;
      const { content, revision } = await collectArchivable(this.keys, tx, orgId, rec);
      const plain = content.recording.title;
      return {
        sealed: await sealArchiveObject(this.keys, tx, orgId, archiveId, content),
        titleEnc: plain ? await this.keys.encrypt(tx, archiveTitleLocation(orgId, archiveId), plain) : null,
        rec,
        stamp: { updatedAt: rec.updatedAt.getTime(), revision },
        audioSize: content.audio ? content.audio.plainSize : undefined,
      };
    });
    if (!snap) return undefined;
    let object: StoredPart;
    let audioPart: StoredPart | undefined;
    try {
      object = await this.store.put(
        orgId,
        archiveId,
        'object',
        Readable.from([snap.sealed]),
        this.clock.now(),
      );
      if (snap.audioSize !== undefined) {
        const head = await this.blobs.head(orgId, recordingId, 0);
        if (!head) throw new AppError('internal', 'kept audio blob is missing');
        const source =
          head.size === 0 ? Readable.from([]) : this.blobs.readRange(orgId, recordingId, 0, head.size - 1);
        audioPart = await this.store.put(orgId, archiveId, 'audio', source, this.clock.now());
      }
      const committed = await withTenant(this.db, ctx, async (tx) => {
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
            archivedAt: this.clock.now(),
            archivedByPolicy: true,
            sizeBytes: object.size + (audioPart?.size ?? 0),
            contentSha256: object.sha256,
            audioSizeBytes: audioPart?.size ?? null,
            audioSha256: audioPart?.sha256 ?? null,
          },
          keyVersionOf(snap.sealed),
        );
        if (!(await archiveRepo.deleteRecording(tx, recordingId))) return false;
        await this.audit.record(tx, {
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
        await this.store.remove(orgId, archiveId);
        return undefined;
      }
    } catch (err) {
      await this.store.remove(orgId, archiveId).catch(() => undefined);
      throw err;
    }
    // The rows are gone (the audio row cascaded); the active blob follows.
    await this.audio.remove(orgId, recordingId);
    return archiveId;
  }

  /** GET /org/archive: newest first, keyset paging on the last item's id. */
  async list(
    actor: Actor,
    page: { limit: number; after?: string | undefined },
  ): Promise<{ items: ArchiveItemView[]; next: string | null }> {
    requirePermission(actor, 'org.manage');
    return withTenant(this.db, actor, async (tx) => {
      let after: { archivedAt: Date; id: string } | undefined;
      if (page.after) {
        const last = await archiveRepo.find(tx, page.after);
        if (!last) throw new AppError('bad_request', 'Unknown page cursor');
        after = { archivedAt: last.archivedAt, id: last.id };
      }
      const rows = await archiveRepo.list(tx, { limit: page.limit, after });
      const items: ArchiveItemView[] = [];
      for (const r of rows)
        items.push({
          id: r.id,
          recordingId: r.recordingId,
          ownerId: r.ownerId,
          title: r.titleEnc
            ? await this.keys.decryptString(tx, archiveTitleLocation(r.orgId, r.id), r.titleEnc)
            : null,
          recordingCreatedAt: r.recordingCreatedAt,
          archivedAt: r.archivedAt,
          archivedByPolicy: r.archivedByPolicy,
          sizeBytes: r.sizeBytes,
          hasAudio: r.audioSha256 !== null,
        });
      return { items, next: rows.length === page.limit ? rows[rows.length - 1]!.id : null };
    });
  }

  /**
   * POST /org/archive/:id/restore: the recording comes back under its own id with the same
   * transcript, original, edit revision and audio; audited; the archive item is then removed.
   * If the owner has left the org, the restoring admin becomes the owner (audited).
   */
  async restore(actor: Actor, archiveId: string): Promise<{ recordingId: string }> {
    requirePermission(actor, 'org.manage');
    const row = await withTenant(this.db, actor, (tx) => archiveRepo.find(tx, archiveId));
    if (!row) throw notFound('Archived recording');
    const sealed = await this.readPart(row.orgId, row.id, 'object', row.contentSha256);
    const content = await withTenant(this.db, actor, (tx) =>
      openArchiveObject(this.keys, tx, row.orgId, row.id, sealed),
    );
    const recId = content.recording.id;
    if (content.audio) {
      const source = await this.store.get(row.orgId, row.id, 'audio');
      if (!source) throw new AppError('internal', 'archived audio part is missing');
      // Hashed while copied: a swapped or damaged audio part is refused (the item stays).
      const hash = createHash('sha256');
      const tap = new PassThrough();
      tap.on('data', (c: Buffer) => hash.update(c));
      await this.blobs.write(row.orgId, recId, source, tap);
      if (hash.digest('hex') !== row.audioSha256) {
        const claimed = await withTenant(this.db, actor, (tx) => recordingAudioRepository.find(tx, recId));
        if (!claimed) await this.blobs.remove(row.orgId, recId);
        this.logger.warn(
          { orgId: row.orgId, archiveId: row.id },
          'archived audio part does not match its record',
        );
        throw new AppError('decryption_failed', 'archived audio does not match its record');
      }
    }
    try {
      await withTenant(this.db, actor, async (tx) => {
        if (!(await archiveRepo.take(tx, row.id))) throw notFound('Archived recording');
        const r = content.recording;
        const keepOwner = await archiveRepo.isMember(tx, r.ownerId);
        const ownerId = keepOwner ? r.ownerId : actor.userId;
        const titleEnc = r.title
          ? await this.keys.encrypt(tx, titleLocation(row.orgId, recId), r.title)
          : null;
        await archiveRepo.insertRecording(tx, row.orgId, { ...r, ownerId, titleEnc }, this.clock.now());
        const t = content.transcript;
        if (t)
          await archiveRepo.insertTranscript(tx, row.orgId, recId, {
            revision: t.revision,
            createdAt: t.createdAt,
            updatedAt: t.updatedAt,
            bodyEnc: await this.keys.encrypt(tx, transcriptLocation(row.orgId, recId), t.body),
            speakerNamesEnc: t.speakerNames
              ? await this.keys.encrypt(tx, speakerNamesLocation(row.orgId, recId), t.speakerNames)
              : null,
            originalBodyEnc: t.originalBody
              ? await this.keys.encrypt(tx, originalTranscriptLocation(row.orgId, recId), t.originalBody)
              : null,
          });
        // Searchable again, in the same transaction (docs/search.md).
        await indexRecording(tx, this.keys, row.orgId, recId);
        if (content.audio)
          await recordingAudioRepository.insert(tx, {
            recordingId: recId,
            orgId: row.orgId,
            contentType: content.audio.contentType,
            plainSize: content.audio.plainSize,
            chunkSize: content.audio.chunkSize,
            contentKeyEnc: await this.keys.encrypt(
              tx,
              contentKeyLocation(row.orgId, recId),
              content.audio.contentKey,
            ),
            now: this.clock.now(),
          });
        await this.audit.record(tx, {
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
        const claimed = await withTenant(this.db, actor, (tx) => recordingAudioRepository.find(tx, recId));
        if (!claimed) await this.blobs.remove(row.orgId, recId);
      }
      throw err;
    }
    await this.store.remove(row.orgId, row.id);
    return { recordingId: recId };
  }

  /**
   * DELETE /org/archive/:id: hard delete of the row and every stored part, now. The receipt
   * (what, when, by whom, hashes of the sealed bytes) is written to the audit log in the same
   * transaction that deletes the row (and expires the org's ready/building exports); the parts
   * and export files go right after the commit.
   */
  async delete(actor: Actor, archiveId: string): Promise<DeletionReceipt> {
    requirePermission(actor, 'org.manage');
    return this.destroy(
      {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        ip: actor.ip,
        reason: 'requested',
      },
      archiveId,
    );
  }

  /** The hard delete itself (also used by account deletion, as the system). 404 when absent. */
  async destroy(ctx: ArchiveDeletionContext, archiveId: string): Promise<DeletionReceipt> {
    const { receipt, expired } = await withTenant(
      this.db,
      { orgId: ctx.orgId, userId: ctx.actorId },
      async (tx) => {
        const row = await archiveRepo.take(tx, archiveId);
        if (!row) throw notFound('Archived recording');
        const expired = await this.exports.inTransaction(tx, ctx.orgId, 'archive_deleted');
        const r: DeletionReceipt = {
          archiveId: row.id,
          recordingId: row.recordingId,
          deletedAt: this.clock.now(),
          deletedBy: ctx.actorId ?? 'system',
          contentSha256: row.contentSha256,
          audioSha256: row.audioSha256,
          exportsInvalidated: expired.length,
        };
        await this.audit.record(tx, {
          orgId: ctx.orgId,
          actorId: ctx.actorId,
          actorKind: ctx.actorKind,
          action: 'archive.deleted',
          targetType: 'recording',
          targetId: row.recordingId,
          ip: ctx.ip,
          details: { ...r, deletedAt: r.deletedAt.toISOString(), reason: ctx.reason },
        });
        return { receipt: r, expired };
      },
    );
    await this.store.remove(ctx.orgId, receipt.archiveId);
    await this.exports.removeFiles(ctx.orgId, expired);
    return receipt;
  }

  /** Removes every archived object of an org from the store (org deletion; rows cascade with the org). */
  async purgeOrg(orgId: string): Promise<void> {
    await this.store.removeOrg(orgId);
  }

  /** Removes stored items that have no archive row (crash leftovers), when older than `olderThanMs`. */
  async sweep(olderThanMs: number): Promise<number> {
    const now = this.clock.now().getTime();
    const entries = (await this.store.list()).filter((e) => now - e.writtenAtMs >= olderThanMs);
    if (entries.length === 0) return 0;
    const kept = await withSystem(this.db, (tx) => archiveRepo.allKeys(tx));
    let removed = 0;
    for (const e of entries) {
      if (kept.has(`${e.orgId}/${e.archiveId}`)) continue;
      await this.store.remove(e.orgId, e.archiveId);
      removed++;
    }
    if (removed > 0) this.logger.info({ removed }, 'removed orphan archive objects');
    return removed;
  }

  /** A stored part, checked against the hash its row recorded (a swapped or damaged object is refused). */
  private async readPart(orgId: string, archiveId: string, part: 'object', sha256: string): Promise<Buffer> {
    const stream = await this.store.get(orgId, archiveId, part);
    if (!stream) throw new AppError('internal', 'archive object is missing');
    const bytes = await buffer(stream);
    if (createHash('sha256').update(bytes).digest('hex') !== sha256)
      throw new AppError('decryption_failed', 'archive object does not match its record');
    return bytes;
  }
}
