import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { backoffMs } from '../../domain/backoff.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { ArchiveStore } from '../../adapters/storage/archive-store.adapter.js';
import type { AudioBlobStore } from '../../adapters/storage/audio-blob.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { recordingArchiveRepository as archiveRepo } from '../../repositories/lifecycle/recording-archive.repository.js';
import { archiveTitleLocation } from './archive-object.js';
import { ArchiveRestorer } from './archive-restore.js';
import { ArchiveWriter } from './archive-writer.js';
import type { AudioStoreService } from '../recordings/audio-store.service.js';
import type { ArchiveDeletionContext, ArchiveItemView, DeletionReceipt } from './archive.types.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import type { OrgExportInvalidation } from '../org-export/org-export-invalidation.js';
import { requirePermission } from '../orgs/org.service.js';
import type { ScheduledTask } from './scheduler.service.js';

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

export interface ArchiveServiceDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  store: ArchiveStore;
  audio: Pick<AudioStoreService, 'remove'>;
  blobs: AudioBlobStore;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  exports: Pick<OrgExportInvalidation, 'inTransaction' | 'removeFiles'>;
}

export class ArchiveService {
  private readonly writer: ArchiveWriter;
  private readonly restorer: ArchiveRestorer;

  constructor(private readonly deps: ArchiveServiceDeps) {
    this.writer = new ArchiveWriter(deps);
    this.restorer = new ArchiveRestorer(deps);
  }

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
    const now = this.deps.clock.now();
    const due = await withSystem(this.deps.db, (tx) => archiveRepo.expired(tx, now, limit));
    const byOrg = new Map<string, { recordingIds: string[]; archiveIds: string[] }>();
    for (const { orgId, id } of due) {
      const archiveId = await this.archiveRecording(orgId, id).catch(async (err: unknown) => {
        // One broken recording must not stop the others; ids only in the log.
        const failures = await withTenant(this.deps.db, { orgId, userId: null }, (tx) =>
          archiveRepo.markArchiveFailed(
            tx,
            id,
            // One node runs retention and each recording has its own retry time: no herd to spread,
            // so the backoff is taken at its ceiling (1 h, doubling, at most 7 days).
            (failures) => new Date(now.getTime() + backoffMs(ARCHIVE_RETRY, failures, () => 1)),
          ),
        ).catch(() => undefined);
        this.deps.logger.warn({ err, orgId, recordingId: id, failures }, 'archiving a recording failed');
        return undefined;
      });
      if (!archiveId) continue;
      const entry = byOrg.get(orgId) ?? { recordingIds: [], archiveIds: [] };
      entry.recordingIds.push(id);
      entry.archiveIds.push(archiveId);
      byOrg.set(orgId, entry);
    }
    for (const [orgId, e] of byOrg)
      await withTenant(this.deps.db, { orgId, userId: null }, (tx) =>
        this.deps.audit.record(tx, {
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
    if (archived > 0) this.deps.logger.info({ archived, orgs: byOrg.size }, 'retention archived recordings');
    return { archived };
  }

  /**
   * Archives one finished recording; returns the archive id, or undefined when the recording is
   * gone, not finished, or changed while its object was written (archive-writer.ts).
   */
  archiveRecording(orgId: string, recordingId: string): Promise<string | undefined> {
    return this.writer.archiveRecording(orgId, recordingId);
  }

  /** GET /org/archive: newest first, keyset paging on the last item's id. */
  async list(
    actor: Actor,
    page: { limit: number; after?: string | undefined },
  ): Promise<{ items: ArchiveItemView[]; next: string | null }> {
    requirePermission(actor, 'org.manage');
    return withTenant(this.deps.db, actor, async (tx) => {
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
            ? await this.deps.keys.decryptString(tx, archiveTitleLocation(r.orgId, r.id), r.titleEnc)
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
   * If the owner has left the org, the restoring admin becomes the owner (archive-restore.ts).
   */
  restore(actor: Actor, archiveId: string): Promise<{ recordingId: string }> {
    requirePermission(actor, 'org.manage');
    return this.restorer.restore(actor, archiveId);
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
      this.deps.db,
      { orgId: ctx.orgId, userId: ctx.actorId },
      async (tx) => {
        const row = await archiveRepo.take(tx, archiveId);
        if (!row) throw notFound('Archived recording');
        const expired = await this.deps.exports.inTransaction(tx, ctx.orgId, 'archive_deleted');
        const r: DeletionReceipt = {
          archiveId: row.id,
          recordingId: row.recordingId,
          deletedAt: this.deps.clock.now(),
          deletedBy: ctx.actorId ?? 'system',
          contentSha256: row.contentSha256,
          audioSha256: row.audioSha256,
          exportsInvalidated: expired.length,
        };
        await this.deps.audit.record(tx, {
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
    await this.deps.store.remove(ctx.orgId, receipt.archiveId);
    await this.deps.exports.removeFiles(ctx.orgId, expired);
    return receipt;
  }

  /** Removes every archived object of an org from the store (org deletion; rows cascade with the org). */
  async purgeOrg(orgId: string): Promise<void> {
    await this.deps.store.removeOrg(orgId);
  }

  /** Removes stored items that have no archive row (crash leftovers), when older than `olderThanMs`. */
  async sweep(olderThanMs: number): Promise<number> {
    const now = this.deps.clock.now().getTime();
    const entries = (await this.deps.store.list()).filter((e) => now - e.writtenAtMs >= olderThanMs);
    if (entries.length === 0) return 0;
    const kept = await withSystem(this.deps.db, (tx) => archiveRepo.allKeys(tx));
    let removed = 0;
    for (const e of entries) {
      if (kept.has(`${e.orgId}/${e.archiveId}`)) continue;
      await this.deps.store.remove(e.orgId, e.archiveId);
      removed++;
    }
    if (removed > 0) this.deps.logger.info({ removed }, 'removed orphan archive objects');
    return removed;
  }
}
