import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { keyVersionOf } from '../../crypto/envelope.js';
import type { ArchiveStore } from '../../adapters/storage/archive-store.adapter.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  DATA_KEY_HOLDERS,
  dataKeyHolderRepository,
  type DataKeyHolder,
} from '../../repositories/keys/data-key-holder.repository.js';
import { keyRepository } from '../../repositories/keys/key.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from './key.service.js';
import type { ScheduledTask } from '../lifecycle/scheduler.service.js';

export interface DataKeyRotationOptions {
  /** SOTTO_DATA_KEY_MAX_AGE_DAYS: an org's newest data key older than this gets a successor; 0 = never. */
  maxAgeDays: number;
  /** Rows re-encrypted per transaction. */
  batchSize?: number;
  /** Rows re-encrypted per run at most (the rest waits for the next maintenance pass). */
  maxRowsPerRun?: number;
  /**
   * How long a superseded version is kept at least, even when no stored row uses it any more:
   * live segments kept in Redis for late viewers (a day at most) and a request that read the old
   * version just before the rotation committed may still seal under it.
   */
  retireGraceMs?: number;
  /** Orgs with older versions visited per run (round-robin: the next run starts after the last). */
  orgsPerRun?: number;
}

export interface RotationRun {
  rotated: number;
  reencrypted: number;
  retired: number;
}

const DAY_MS = 24 * 3600 * 1000;

export interface DataKeyRotationServiceDeps {
  db: Database;
  keys: Pick<KeyService, 'rotateDataKey' | 'retireDataKey' | 'decrypt' | 'encrypt' | 'forgetOrg'>;
  audit: Pick<AuditService, 'record'>;
  archive: Pick<ArchiveStore, 'get'>;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  opts: DataKeyRotationOptions;
}

/**
 * Scheduled data-key rotation (docs/security.md, "Data-key rotation"). Per org, when its newest
 * data key is older than the configured age: a new version (KeyService.rotateDataKey; new
 * ciphertexts use it at once); then, in the background, every sealed column of the org
 * (DATA_KEY_HOLDERS) is re-encrypted under it in small batches; then each older version that no
 * row and no archive object uses any more, and that was superseded longer than the grace period
 * ago, is retired — its wrapped key deleted. Cold-archive objects are sealed once and keep their
 * version (their digests are receipts; recording_archive.object_key_version records it), so a
 * version an archive object still uses stays until that object is restored or expires. Safe on any number of nodes: orgs and rows are taken with
 * SKIP LOCKED, and the task itself is claimed by one node per interval.
 */
export class DataKeyRotationService {
  private readonly batchSize: number;
  private readonly maxRowsPerRun: number;
  private readonly retireGraceMs: number;
  private readonly orgsPerRun: number;
  /** The last org the previous run visited (null: start from the first). */
  private cursor: string | null = null;

  constructor(private readonly deps: DataKeyRotationServiceDeps) {
    this.batchSize = deps.opts.batchSize ?? 200;
    this.maxRowsPerRun = deps.opts.maxRowsPerRun ?? 20_000;
    this.retireGraceMs = deps.opts.retireGraceMs ?? 2 * DAY_MS;
    this.orgsPerRun = deps.opts.orgsPerRun ?? 1000;
  }

  tasks(): ScheduledTask[] {
    return [
      {
        name: 'data-key-rotation',
        run: async () => {
          const run = await this.runOnce();
          if (run.rotated + run.reencrypted + run.retired > 0)
            this.deps.logger.info(run, 'data keys rotated');
        },
      },
    ];
  }

  async runOnce(): Promise<RotationRun> {
    const rotated = this.deps.opts.maxAgeDays > 0 ? await this.rotateDue() : 0;
    let reencrypted = 0;
    let retired = 0;
    const orgs = await withSystem(this.deps.db, (tx) =>
      keyRepository.orgsWithOldVersions(tx, this.cursor, this.orgsPerRun),
    );
    for (const orgId of orgs) {
      const before = this.cursor;
      this.cursor = orgId;
      try {
        reencrypted += await this.reencryptOrg(orgId, this.maxRowsPerRun - reencrypted);
        retired += await this.retireUnused(orgId);
      } catch (err) {
        // One org's trouble (a KEK file not restored, say) must not stop the others.
        this.deps.logger.warn({ err, orgId }, 'data-key rotation: an organization was skipped');
      }
      if (reencrypted >= this.maxRowsPerRun) {
        // The budget ran out in this org: the next run continues with it.
        this.cursor = before;
        break;
      }
    }
    // Visited the last org there is: the next run starts from the first again.
    if (orgs.length < this.orgsPerRun && this.cursor === (orgs.at(-1) ?? this.cursor)) this.cursor = null;
    return { rotated, reencrypted, retired };
  }

  private async rotateDue(): Promise<number> {
    const now = this.deps.clock.now();
    const olderThan = new Date(now.getTime() - this.deps.opts.maxAgeDays * DAY_MS);
    let total = 0;
    // Orgs that failed in this pass: left out of the next batches, tried again next run.
    const failed: string[] = [];
    for (;;) {
      const n = await withSystem(this.deps.db, async (tx) => {
        const orgs = await keyRepository.lockOrgsDueForDataKeyRotation(tx, olderThan, this.batchSize, failed);
        for (const orgId of orgs) {
          // One org's trouble (its KEK file missing, say) must not roll back or stop the others.
          await tx.query('SAVEPOINT rotate_org');
          try {
            const version = await this.deps.keys.rotateDataKey(tx, orgId, now);
            await this.deps.audit.record(tx, {
              orgId,
              actorId: null,
              actorKind: 'system',
              action: 'keys.data_key_rotated',
              targetType: 'data_key',
              targetId: String(version),
              details: { version, maxAgeDays: this.deps.opts.maxAgeDays },
            });
            await tx.query('RELEASE SAVEPOINT rotate_org');
            total++;
          } catch (err) {
            await tx.query('ROLLBACK TO SAVEPOINT rotate_org');
            // The new version may be cached although its row is gone with the savepoint.
            this.deps.keys.forgetOrg(orgId);
            failed.push(orgId);
            this.deps.logger.warn({ err, orgId }, 'data-key rotation: an organization could not be rotated');
          }
        }
        return orgs.length;
      });
      if (n < this.batchSize) return total;
    }
  }

  /** Re-encrypts up to `budget` of the org's rows sealed under an older version; returns how many. */
  private async reencryptOrg(orgId: string, budget: number): Promise<number> {
    let done = 0;
    for (const holder of DATA_KEY_HOLDERS) {
      // Rows this pass cannot decrypt: passed over (they keep their version, so it is not retired).
      const skipped: string[] = [];
      for (;;) {
        if (done >= budget) return done;
        const batch = (tx: Queryable) => this.reencryptBatch(tx, holder, orgId, budget - done, skipped);
        const { seen, reencrypted } = holder.tenant
          ? await withTenant(this.deps.db, { orgId, userId: null }, batch)
          : await withSystem(this.deps.db, batch);
        done += reencrypted;
        if (seen === 0) break;
      }
    }
    return done;
  }

  private async reencryptBatch(
    tx: Queryable,
    h: DataKeyHolder,
    orgId: string,
    budget: number,
    skipped: string[],
  ): Promise<{ seen: number; reencrypted: number }> {
    const versions = await keyRepository.versions(tx, orgId);
    const active = versions.at(-1)?.version;
    if (active === undefined) return { seen: 0, reencrypted: 0 };
    const rows = await dataKeyHolderRepository.lockStale(
      tx,
      h,
      orgId,
      active,
      Math.min(this.batchSize, budget),
      skipped,
    );
    let reencrypted = 0;
    for (const row of rows) {
      const loc = { orgId, table: h.locTable, rowId: row.id, field: h.field };
      let plain: Buffer;
      try {
        plain = await this.deps.keys.decrypt(tx, loc, row.sealed);
      } catch (err) {
        // A damaged row (or one sealed at another location) is skipped, not fatal: it keeps its
        // version pinned, and the rest of the org moves on. Location only in the log, never content.
        skipped.push(row.id);
        this.deps.logger.warn(
          { err, orgId, table: h.table, id: row.id },
          'data-key rotation: a row was skipped',
        );
        continue;
      }
      try {
        await dataKeyHolderRepository.replace(
          tx,
          h,
          orgId,
          row.id,
          await this.deps.keys.encrypt(tx, loc, plain),
        );
        reencrypted++;
      } finally {
        plain.fill(0);
      }
    }
    return { seen: rows.length, reencrypted };
  }

  /** Retires each superseded version nothing uses any more (past the grace period); returns how many. */
  private async retireUnused(orgId: string): Promise<number> {
    const now = this.deps.clock.now().getTime();
    if (!(await this.recordArchiveVersions(orgId))) return 0;
    return withSystem(this.deps.db, async (tx) => {
      const versions = await keyRepository.versions(tx, orgId);
      const { counts: inRows, unknown } = await dataKeyHolderRepository.countByVersion(tx, orgId);
      // An archive object whose version is unknown may need any of them (archived meanwhile).
      if (unknown > 0) return 0;
      let retired = 0;
      for (let i = 0; i < versions.length - 1; i++) {
        const v = versions[i]!.version;
        const supersededAt = versions[i + 1]!.createdAt.getTime();
        if (now - supersededAt < this.retireGraceMs) continue;
        if ((inRows.get(v) ?? 0) > 0) continue;
        if (await this.deps.keys.retireDataKey(tx, orgId, v)) {
          retired++;
          await this.deps.audit.record(tx, {
            orgId,
            actorId: null,
            actorKind: 'system',
            action: 'keys.data_key_retired',
            targetType: 'data_key',
            targetId: String(v),
            details: { version: v },
          });
        }
      }
      return retired;
    });
  }

  /**
   * Objects archived before their key version was recorded (migration 0024): reads each one's
   * header once and records it. False when any cannot be read (the archive volume not mounted,
   * a node with another SOTTO_ARCHIVE_DIR, an object still being written): then nothing of the
   * org is retired — a missing object is no proof that its version is unused.
   */
  private async recordArchiveVersions(orgId: string): Promise<boolean> {
    const ids = await withSystem(this.deps.db, (tx) =>
      dataKeyHolderRepository.archiveIdsWithoutVersion(tx, orgId),
    );
    let complete = true;
    for (const id of ids) {
      let header: Buffer | undefined;
      try {
        const stream = await this.deps.archive.get(orgId, id, 'object');
        header = stream ? await firstBytes(stream, 33) : undefined;
      } catch (err) {
        this.deps.logger.warn(
          { err, orgId, archiveId: id },
          'data-key rotation: an archive object is unreadable',
        );
      }
      if (!header || header.length < 5) {
        complete = false;
        continue;
      }
      const v = keyVersionOf(header);
      await withSystem(this.deps.db, (tx) => dataKeyHolderRepository.setArchiveVersion(tx, orgId, id, v));
    }
    if (!complete)
      this.deps.logger.warn({ orgId }, 'data-key rotation: archive objects missing, no key retired');
    return complete;
  }
}

async function firstBytes(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= n) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}
