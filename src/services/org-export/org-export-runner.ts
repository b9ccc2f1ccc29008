import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import { can } from '../../domain/roles.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { ExportFileStore } from '../../adapters/storage/export-file.adapter.js';
import { memberRepository } from '../../repositories/orgs/member.repository.js';
import { orgExportRepository, type OrgExportRow } from '../../repositories/orgs/org-export.repository.js';
import type { KeyService } from '../keys/key.service.js';
import { planExport, streamZip, type ExportSources } from './org-export-builder.js';
import { exportKeyLocation } from './org-export-key.js';
import { sealZip } from './org-export-seal.js';

/**
 * The background builder of org exports (docs/lifecycle.md), one per node: claims queued
 * exports (lease, SKIP LOCKED) and abandoned ones (expired lease), builds each zip
 * (org-export-builder.ts), seals it (org-export-seal.ts) and marks it ready. The lease is
 * renewed while it builds; an export deleted or invalidated meanwhile stops the build. Shutdown
 * (`stop`) hands a build in progress back to the queue — also while it is still planning, and
 * between entries — so a stopping node never waits for a whole build.
 */

/** Builds attempted before an export whose builder keeps dying is failed for good. */
const MAX_ATTEMPTS = 2;

export interface OrgExportRunnerOptions {
  ttlHours: number;
  leaseSeconds?: number;
  sweepIntervalMs?: number;
}

export interface OrgExportRunnerDeps {
  db: Database;
  keys: KeyService;
  files: ExportFileStore;
  sources: ExportSources;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  opts: OrgExportRunnerOptions;
}

export class OrgExportRunner {
  private draining: Promise<void> | undefined;
  /** Set when work may have arrived while a drain was finishing: it looks once more. */
  private rerun = false;
  private stopping = false;
  /** Stops the build in progress (shutdown): its export goes back to the queue. */
  private abortCurrent: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly leaseMs: number;

  constructor(private readonly d: OrgExportRunnerDeps) {
    this.leaseMs = (d.opts.leaseSeconds ?? 60) * 1000;
  }

  /**
   * Starts this node's builder (serve): builds exports as they are requested, and looks every
   * minute for queued ones and ones a dead node abandoned (expired lease). Expiry is the
   * scheduler's task (`tasks()`), run once across nodes.
   */
  start(): void {
    if (this.timer) return;
    this.stopping = false;
    const every = this.d.opts.sweepIntervalMs ?? 60_000;
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
  kick(): void {
    this.rerun = true;
    void this.drain().catch((err: unknown) =>
      this.d.logger.warn({ err: errName(err) }, 'export builder stopped'),
    );
  }

  /** Builds whatever is claimable now; resolves when nothing is left (the sweep awaits it). */
  drain(): Promise<void> {
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
      const now = this.d.clock.now();
      const row = await withSystem(this.d.db, (tx) =>
        orgExportRepository.claim(tx, now, new Date(now.getTime() + this.leaseMs)),
      );
      if (!row) {
        if (this.rerun) continue;
        return;
      }
      if (row.attempts > MAX_ATTEMPTS) {
        // Its builder died repeatedly (restarts, crashes): say so rather than loop forever.
        await withSystem(this.d.db, (tx) => orgExportRepository.markFailed(tx, row.id, 'interrupted'));
        await this.d.files.remove(row.orgId, row.id);
        continue;
      }
      await this.build(row);
    }
  }

  private async build(row: OrgExportRow): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const actor = await this.builderActor(row);
      const plan = await planExport(this.d.sources, actor, {
        exportId: row.id,
        createdAt: row.createdAt,
        requestedBy: row.requestedBy!,
      });
      // Planning reads every page of the org: a shutdown meanwhile hands the export back now.
      if (this.stopping) throw new AppError('unavailable', 'server stopping');
      const total = plan.entries.length;
      let done = 0;
      let cancelled = false;
      const zip = streamZip(
        plan,
        row.createdAt,
        () => done++,
        () => this.stopping,
      );
      // Lease renewal and progress; a deleted (or retaken) export stops the build.
      const beat = async () => {
        const now = this.d.clock.now();
        const ok = await withSystem(this.d.db, (tx) =>
          orgExportRepository.progress(tx, row.id, {
            done,
            total,
            attempts: row.attempts,
            now,
            leaseUntil: new Date(now.getTime() + this.leaseMs),
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
      const { size, sha256, contentKey } = await sealZip(this.d.files, row.orgId, row.id, zip, () => {
        // The zip is written: from here a shutdown lets the (short) re-seal finish.
        this.abortCurrent = undefined;
      });
      clearInterval(timer);
      timer = undefined;
      await beat();
      if (cancelled) throw new AppError('conflict', 'export cancelled');
      const now = this.d.clock.now();
      const ok = await withTenant(this.d.db, { orgId: row.orgId, userId: null }, async (tx) =>
        orgExportRepository.markReady(tx, row.id, {
          now,
          expiresAt: new Date(now.getTime() + this.d.opts.ttlHours * 3600_000),
          sizeBytes: size,
          sha256,
          contentKeyEnc: await this.d.keys.encrypt(tx, exportKeyLocation(row.orgId, row.id), contentKey),
          attempts: row.attempts,
        }),
      );
      contentKey.fill(0);
      if (!ok) throw new AppError('conflict', 'export cancelled');
      this.d.logger.info(
        { exportId: row.id, orgId: row.orgId, items: total, skipped: plan.skipped.length },
        'org export ready',
      );
    } catch (err) {
      await this.d.files.remove(row.orgId, row.id);
      if (this.stopping) {
        await withSystem(this.d.db, (tx) => orgExportRepository.release(tx, row.id, row.attempts));
        this.d.logger.info({ exportId: row.id }, 'org export handed back (shutdown)');
        return;
      }
      const code = err instanceof AppError ? err.code : 'internal';
      this.d.logger.warn(
        { exportId: row.id, orgId: row.orgId, code, err: errName(err) },
        'org export failed',
      );
      await withSystem(this.d.db, (tx) => orgExportRepository.markFailed(tx, row.id, code));
    } finally {
      this.abortCurrent = undefined;
      if (timer) clearInterval(timer);
    }
  }

  /** The requester, as they are now: an export is refused if they lost the right to ask for it. */
  private async builderActor(row: OrgExportRow): Promise<Actor> {
    const member = row.requestedBy
      ? await withTenant(this.d.db, { orgId: row.orgId, userId: null }, (tx) =>
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
