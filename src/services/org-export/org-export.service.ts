import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { ExportFileStore } from '../../adapters/storage/export-file.adapter.js';
import { isUniqueViolation } from '../../repositories/orgs/member.repository.js';
import { orgExportRepository, type OrgExportRow } from '../../repositories/orgs/org-export.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import type { ExportSources } from './org-export-builder.js';
import type { ExportInvalidationReason, OrgExportInvalidation } from './org-export-invalidation.js';
import { exportKeyLocation } from './org-export-key.js';
import { OrgExportRunner, type OrgExportRunnerOptions } from './org-export-runner.js';
import { openSealed } from './org-export-seal.js';
import { requirePermission } from '../orgs/org.service.js';
import type { ScheduledTask } from '../lifecycle/scheduler.service.js';

/**
 * Data-portability exports (docs/lifecycle.md), the routes-facing side. An owner/admin asks
 * (202); a background builder (org-export-runner.ts) on some node claims the export (lease, SKIP LOCKED), streams the zip, and seals it at rest with
 * the chunked cipher under a random per-file key wrapped by the org's data key, like audio. The
 * chunked format needs the plaintext size up front, so the zip first goes to a scratch file
 * encrypted with a throw-away in-memory key (AES-CTR; its SHA-256 is checked on the way back),
 * then is re-sealed into the final file: plaintext never touches the disk. Ready exports are
 * downloadable by admins until `ttlHours` after they were built; the sweep then deletes the file.
 */
export { exportKeyLocation };
/** Scratch and orphan files younger than this may belong to a build in progress elsewhere. */
const ORPHAN_AGE_MS = 6 * 3600_000;

export interface OrgExportView {
  id: string;
  status: OrgExportRow['status'];
  requestedBy: string | null;
  createdAt: Date;
  readyAt: Date | null;
  expiresAt: Date | null;
  sizeBytes: number | null;
  sha256: string | null;
  errorCode: string | null;
  progress: { done: number; total: number };
}

export interface ExportDownload {
  stream: Readable;
  size: number;
  filename: string;
}

const view = (r: OrgExportRow): OrgExportView => ({
  id: r.id,
  status: r.status,
  requestedBy: r.requestedBy,
  createdAt: r.createdAt,
  readyAt: r.readyAt,
  expiresAt: r.expiresAt,
  sizeBytes: r.sizeBytes,
  sha256: r.sha256,
  errorCode: r.errorCode,
  progress: { done: r.itemsDone, total: r.itemsTotal },
});

export interface OrgExportServiceDeps {
  db: Database;
  keys: KeyService;
  audit: AuditService;
  files: ExportFileStore;
  /** What a build reads (members, recordings, transcripts, audio): org-export-builder.ts. */
  sources: ExportSources;
  /** The composition root's one instance, shared with the deletion services. */
  invalidation: OrgExportInvalidation;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  opts: OrgExportRunnerOptions;
}

export class OrgExportService {
  /** This node's builder (claims, builds, leases): org-export-runner.ts. */
  private readonly runner: OrgExportRunner;

  constructor(private readonly deps: OrgExportServiceDeps) {
    this.runner = new OrgExportRunner(deps);
  }

  /** POST /org/export: queues a build (409 while another one is queued or building); audited. */
  async request(actor: Actor): Promise<OrgExportView> {
    requirePermission(actor, 'org.manage');
    let row: OrgExportRow;
    try {
      row = await withTenant(this.deps.db, actor, async (tx) => {
        if (await orgExportRepository.active(tx, actor.orgId))
          throw new AppError('conflict', 'An export is already being prepared');
        const created = await orgExportRepository.insert(tx, {
          orgId: actor.orgId,
          requestedBy: actor.userId,
          now: this.deps.clock.now(),
        });
        await this.deps.audit.record(tx, {
          orgId: actor.orgId,
          actorId: actor.userId,
          actorKind: 'user',
          action: 'org.export_requested',
          targetType: 'org_export',
          targetId: created.id,
          ip: actor.ip,
        });
        return created;
      });
    } catch (err) {
      // Two requests at once: the partial unique index lets only one through.
      if (isUniqueViolation(err)) throw new AppError('conflict', 'An export is already being prepared');
      throw err;
    }
    this.runner.kick();
    return view(row);
  }

  async list(actor: Actor): Promise<OrgExportView[]> {
    requirePermission(actor, 'org.manage');
    const rows = await withTenant(this.deps.db, actor, (tx) =>
      orgExportRepository.list(tx, actor.orgId, 100),
    );
    return rows.map(view);
  }

  async get(actor: Actor, id: string): Promise<OrgExportView> {
    requirePermission(actor, 'org.manage');
    const row = await withTenant(this.deps.db, actor, (tx) => orgExportRepository.find(tx, id));
    if (!row) throw notFound('Export');
    return view(row);
  }

  /**
   * GET /org/exports/:id/download: the decrypted zip, only while ready and unexpired (404 once
   * expired, like a deleted one; 409 while not ready yet). Audited with ids only.
   */
  async download(actor: Actor, id: string): Promise<ExportDownload> {
    requirePermission(actor, 'org.manage');
    const now = this.deps.clock.now();
    const found = await withTenant(this.deps.db, actor, async (tx) => {
      const row = await orgExportRepository.find(tx, id);
      if (!row) throw notFound('Export');
      if (row.status === 'expired' || (row.expiresAt && row.expiresAt <= now))
        throw new AppError('not_found', 'The export has expired');
      if (row.status !== 'ready' || !row.contentKeyEnc || row.sizeBytes === null)
        throw new AppError('conflict', 'The export is not ready');
      const key = await this.deps.keys.decrypt(tx, exportKeyLocation(row.orgId, row.id), row.contentKeyEnc);
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: actor.viaSupportGrant ? 'support' : 'user',
        action: 'org.export_downloaded',
        targetType: 'org_export',
        targetId: row.id,
        ip: actor.ip,
      });
      return { row, key };
    });
    const { row, key } = found;
    const size = row.sizeBytes!;
    const stream = await openSealed(
      this.deps.files,
      { orgId: row.orgId, id: row.id, size },
      key,
      this.deps.logger,
    );
    return { stream, size, filename: `sotto-export-${row.id}.zip` };
  }

  /** DELETE /org/exports/:id: the row and its file; a build in progress notices and stops. Audited. */
  async remove(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'org.manage');
    const row = await withTenant(this.deps.db, actor, async (tx) => {
      const row = await orgExportRepository.find(tx, id);
      if (!row) throw notFound('Export');
      await orgExportRepository.remove(tx, row.id);
      await this.deps.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'org.export_deleted',
        targetType: 'org_export',
        targetId: row.id,
        ip: actor.ip,
      });
      return row;
    });
    await this.deps.files.remove(row.orgId, row.id);
  }

  /** The expiry sweep, run by the scheduler once per interval across all nodes. */
  tasks(): ScheduledTask[] {
    return [
      { name: 'org-exports.expire', intervalSeconds: 300, run: async () => void (await this.expire()) },
    ];
  }

  /** Expiry, then this node builds whatever is queued or was abandoned by a dead node. */
  async sweep(): Promise<{ expired: number; orphans: number }> {
    const result = await this.expire();
    await this.runner.drain();
    return result;
  }

  /**
   * Deletes expired files (status → expired), files of deleted or failed exports, and scratch
   * files of builds that died long ago.
   */
  async expire(): Promise<{ expired: number; orphans: number }> {
    const now = this.deps.clock.now();
    const due = await withSystem(this.deps.db, (tx) => orgExportRepository.expiredBefore(tx, now));
    for (const e of due) {
      // File first: a crash in between leaves a 'ready' row without file (404 on download, and the
      // next sweep marks it), never a file nobody will delete.
      await this.deps.files.remove(e.orgId, e.id);
      await withSystem(this.deps.db, (tx) => orgExportRepository.markExpired(tx, e.id));
    }
    let orphans = 0;
    const entries = await this.deps.files.list();
    if (entries.length > 0) {
      // A building export's files are live: its final file is renamed in before the row turns ready.
      const live = await withSystem(this.deps.db, (tx) => orgExportRepository.liveFiles(tx));
      for (const e of entries) {
        const dead = e.exportId
          ? !live.has(`${e.orgId}/${e.exportId}`)
          : // Scratch/temp files: only a build that died long ago leaves an old one.
            now.getTime() - e.mtimeMs >= ORPHAN_AGE_MS;
        if (!dead) continue;
        await this.deps.files.removeListed(e);
        orphans++;
      }
    }
    if (due.length + orphans > 0) this.deps.logger.info({ expired: due.length, orphans }, 'export sweep');
    return { expired: due.length, orphans };
  }

  /** Starts this node's builder (serve); see OrgExportRunner. */
  start(): void {
    this.runner.start();
  }

  /** Shutdown: a build in progress is handed back to the queue. */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  /** Resolves when this node has no build running (tests, shutdown). */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  /**
   * Data was hard-deleted (a recording, an archived item, an account): the org's ready or building
   * exports may hold it, so they expire now (file deleted, row 'expired' with the reason) instead
   * of at their TTL. Returns how many. The deletion services do the same inside their own
   * transactions through OrgExportInvalidation; this is the standalone entry point.
   */
  async invalidateForDeletion(orgId: string, reason: ExportInvalidationReason): Promise<number> {
    const ids = await withTenant(this.deps.db, { orgId, userId: null }, (tx) =>
      this.deps.invalidation.inTransaction(tx, orgId, reason),
    );
    await this.deps.invalidation.removeFiles(orgId, ids);
    return ids.length;
  }
}
