import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { AppError, notFound } from '../domain/errors.js';
import { can } from '../domain/roles.js';
import type { Clock } from '../repositories/clock.repository.js';
import type { ExportFileRepository } from '../repositories/export-file.repository.js';
import { isUniqueViolation, memberRepository } from '../repositories/member.repository.js';
import { orgExportRepository, type OrgExportRow } from '../repositories/org-export.repository.js';
import type { AuditService } from './audit.service.js';
import type { KeyService } from './key.service.js';
import { planExport, streamZip, type ExportSources } from './org-export-builder.js';
import { openSealed, sealZip } from './org-export-seal.js';
import { requirePermission } from './org.service.js';
import type { ScheduledTask } from './scheduler.service.js';

/**
 * Data-portability exports (docs/lifecycle.md). An owner/admin asks (202); a background builder
 * on some node claims the export (lease, SKIP LOCKED), streams the zip, and seals it at rest with
 * the chunked cipher under a random per-file key wrapped by the org's data key, like audio. The
 * chunked format needs the plaintext size up front, so the zip first goes to a scratch file
 * encrypted with a throw-away in-memory key (AES-CTR; its SHA-256 is checked on the way back),
 * then is re-sealed into the final file: plaintext never touches the disk. Ready exports are
 * downloadable by admins until `ttlHours` after they were built; the sweep then deletes the file.
 */
export const exportKeyLocation = (orgId: string, exportId: string) =>
  ({ orgId, table: 'org_exports', rowId: exportId, field: 'content_key' }) as const;

/** Builds attempted before an export whose builder keeps dying is failed for good. */
const MAX_ATTEMPTS = 2;
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

export interface OrgExportOptions {
  ttlHours: number;
  leaseSeconds?: number;
  sweepIntervalMs?: number;
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

export class OrgExportService {
  private draining: Promise<void> | undefined;
  /** Set when work may have arrived while a drain was finishing: it looks once more. */
  private rerun = false;
  private stopping = false;
  /** Stops the build in progress (shutdown): its export goes back to the queue. */
  private abortCurrent: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly leaseMs: number;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly audit: AuditService,
    private readonly files: ExportFileRepository,
    private readonly sources: ExportSources,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
    private readonly opts: OrgExportOptions,
  ) {
    this.leaseMs = (opts.leaseSeconds ?? 60) * 1000;
  }

  /** POST /org/export: queues a build (409 while another one is queued or building); audited. */
  async request(actor: Actor): Promise<OrgExportView> {
    requirePermission(actor, 'org.manage');
    let row: OrgExportRow;
    try {
      row = await withTenant(this.db, actor, async (tx) => {
        if (await orgExportRepository.active(tx, actor.orgId))
          throw new AppError('conflict', 'An export is already being prepared');
        const created = await orgExportRepository.insert(tx, {
          orgId: actor.orgId,
          requestedBy: actor.userId,
          now: this.clock.now(),
        });
        await this.audit.record(tx, {
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
    this.kick();
    return view(row);
  }

  async list(actor: Actor): Promise<OrgExportView[]> {
    requirePermission(actor, 'org.manage');
    const rows = await withTenant(this.db, actor, (tx) => orgExportRepository.list(tx, actor.orgId, 100));
    return rows.map(view);
  }

  async get(actor: Actor, id: string): Promise<OrgExportView> {
    requirePermission(actor, 'org.manage');
    const row = await withTenant(this.db, actor, (tx) => orgExportRepository.find(tx, id));
    if (!row) throw notFound('Export');
    return view(row);
  }

  /**
   * GET /org/exports/:id/download: the decrypted zip, only while ready and unexpired (404 once
   * expired, like a deleted one; 409 while not ready yet). Audited with ids only.
   */
  async download(actor: Actor, id: string): Promise<ExportDownload> {
    requirePermission(actor, 'org.manage');
    const now = this.clock.now();
    const found = await withTenant(this.db, actor, async (tx) => {
      const row = await orgExportRepository.find(tx, id);
      if (!row) throw notFound('Export');
      if (row.status === 'expired' || (row.expiresAt && row.expiresAt <= now))
        throw new AppError('not_found', 'The export has expired');
      if (row.status !== 'ready' || !row.contentKeyEnc || row.sizeBytes === null)
        throw new AppError('conflict', 'The export is not ready');
      const key = await this.keys.decrypt(tx, exportKeyLocation(row.orgId, row.id), row.contentKeyEnc);
      await this.audit.record(tx, {
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
    const stream = await openSealed(this.files, { orgId: row.orgId, id: row.id, size }, key, this.logger);
    return { stream, size, filename: `sotto-export-${row.id}.zip` };
  }

  /** DELETE /org/exports/:id: the row and its file; a build in progress notices and stops. Audited. */
  async remove(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'org.manage');
    const row = await withTenant(this.db, actor, async (tx) => {
      const row = await orgExportRepository.find(tx, id);
      if (!row) throw notFound('Export');
      await orgExportRepository.remove(tx, row.id);
      await this.audit.record(tx, {
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
    await this.files.remove(row.orgId, row.id);
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
    await this.drain();
    return result;
  }

  /**
   * Deletes expired files (status → expired), files of deleted or failed exports, and scratch
   * files of builds that died long ago.
   */
  async expire(): Promise<{ expired: number; orphans: number }> {
    const now = this.clock.now();
    const due = await withSystem(this.db, (tx) => orgExportRepository.expiredBefore(tx, now));
    for (const e of due) {
      // File first: a crash in between leaves a 'ready' row without file (404 on download, and the
      // next sweep marks it), never a file nobody will delete.
      await this.files.remove(e.orgId, e.id);
      await withSystem(this.db, (tx) => orgExportRepository.markExpired(tx, e.id));
    }
    let orphans = 0;
    const entries = await this.files.list();
    if (entries.length > 0) {
      // A building export's files are live: its final file is renamed in before the row turns ready.
      const live = await withSystem(this.db, (tx) => orgExportRepository.liveFiles(tx));
      for (const e of entries) {
        const dead = e.exportId
          ? !live.has(`${e.orgId}/${e.exportId}`)
          : // Scratch/temp files: only a build that died long ago leaves an old one.
            now.getTime() - e.mtimeMs >= ORPHAN_AGE_MS;
        if (!dead) continue;
        await this.files.removeListed(e);
        orphans++;
      }
    }
    if (due.length + orphans > 0) this.logger.info({ expired: due.length, orphans }, 'export sweep');
    return { expired: due.length, orphans };
  }

  /**
   * Starts this node's builder (serve): builds exports as they are requested, and looks every
   * minute for queued ones and ones a dead node abandoned (expired lease). Expiry is the
   * scheduler's task (`tasks()`), run once across nodes.
   */
  start(): void {
    if (this.timer) return;
    this.stopping = false;
    const every = this.opts.sweepIntervalMs ?? 60_000;
    this.timer = setInterval(() => this.kick(), every);
    this.timer.unref();
    this.kick();
  }

  /** Shutdown: a build in progress is handed back to the queue (another node or the next start takes it). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping = true;
    this.abortCurrent?.();
    await this.idle();
  }

  /** Resolves when this node has no build running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Builds claimable exports one after another on this node, in the background. */
  private kick(): void {
    this.rerun = true;
    void this.drain().catch((err: unknown) =>
      this.logger.warn({ err: errName(err) }, 'export builder stopped'),
    );
  }

  private drain(): Promise<void> {
    if (!this.draining) {
      // `finally` runs after this assignment even when the loop has nothing to do.
      const run = this.drainLoop().finally(() => {
        if (this.draining === run) this.draining = undefined;
      });
      this.draining = run;
    }
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    while (!this.stopping) {
      this.rerun = false;
      const now = this.clock.now();
      const row = await withSystem(this.db, (tx) =>
        orgExportRepository.claim(tx, now, new Date(now.getTime() + this.leaseMs)),
      );
      if (!row) {
        if (this.rerun) continue;
        return;
      }
      if (row.attempts > MAX_ATTEMPTS) {
        // Its builder died repeatedly (restarts, crashes): say so rather than loop forever.
        await withSystem(this.db, (tx) => orgExportRepository.markFailed(tx, row.id, 'interrupted'));
        await this.files.remove(row.orgId, row.id);
        continue;
      }
      await this.build(row);
    }
  }

  private async build(row: OrgExportRow): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const actor = await this.builderActor(row);
      const plan = await planExport(this.sources, actor, {
        exportId: row.id,
        createdAt: row.createdAt,
        requestedBy: row.requestedBy!,
      });
      const total = plan.entries.length;
      let done = 0;
      let cancelled = false;
      const zip = streamZip(plan, row.createdAt, () => done++);
      // Lease renewal and progress; a deleted (or retaken) export stops the build.
      const beat = async () => {
        const ok = await withSystem(this.db, (tx) =>
          orgExportRepository.progress(tx, row.id, {
            done,
            total,
            attempts: row.attempts,
            leaseUntil: new Date(this.clock.now().getTime() + this.leaseMs),
          }),
        );
        if (!ok && !cancelled) {
          cancelled = true;
          if (!zip.readableEnded) zip.destroy(new AppError('conflict', 'export cancelled'));
        }
      };
      this.abortCurrent = () => {
        if (!zip.readableEnded) zip.destroy(new AppError('unavailable', 'server stopping'));
      };
      await beat();
      timer = setInterval(() => void beat().catch(() => undefined), Math.min(1000, this.leaseMs / 3));
      const { size, sha256, contentKey } = await sealZip(this.files, row.orgId, row.id, zip, () => {
        // The zip is written: from here a shutdown lets the (short) re-seal finish.
        this.abortCurrent = undefined;
      });
      clearInterval(timer);
      timer = undefined;
      await beat();
      if (cancelled) throw new AppError('conflict', 'export cancelled');
      const now = this.clock.now();
      const ok = await withTenant(this.db, { orgId: row.orgId, userId: null }, async (tx) =>
        orgExportRepository.markReady(tx, row.id, {
          now,
          expiresAt: new Date(now.getTime() + this.opts.ttlHours * 3600_000),
          sizeBytes: size,
          sha256,
          contentKeyEnc: await this.keys.encrypt(tx, exportKeyLocation(row.orgId, row.id), contentKey),
          attempts: row.attempts,
        }),
      );
      contentKey.fill(0);
      if (!ok) throw new AppError('conflict', 'export cancelled');
      this.logger.info({ exportId: row.id, orgId: row.orgId, items: total }, 'org export ready');
    } catch (err) {
      await this.files.remove(row.orgId, row.id);
      if (this.stopping) {
        await withSystem(this.db, (tx) => orgExportRepository.release(tx, row.id, row.attempts));
        this.logger.info({ exportId: row.id }, 'org export handed back (shutdown)');
        return;
      }
      const code = err instanceof AppError ? err.code : 'internal';
      this.logger.warn({ exportId: row.id, orgId: row.orgId, code, err: errName(err) }, 'org export failed');
      await withSystem(this.db, (tx) => orgExportRepository.markFailed(tx, row.id, code));
    } finally {
      this.abortCurrent = undefined;
      if (timer) clearInterval(timer);
    }
  }

  /** The requester, as they are now: an export is refused if they lost the right to ask for it. */
  private async builderActor(row: OrgExportRow): Promise<Actor> {
    const member = row.requestedBy
      ? await withTenant(this.db, { orgId: row.orgId, userId: null }, (tx) =>
          memberRepository.find(tx, row.orgId, row.requestedBy!),
        )
      : undefined;
    if (!member || !can(member.role, 'org.manage'))
      throw new AppError('forbidden', 'The requester may no longer export');
    return {
      userId: member.id,
      orgId: row.orgId,
      role: member.role,
      sessionId: '',
      viaSupportGrant: false,
      ip: '',
    };
  }
}

/** Error class name only: messages may quote data. */
function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
