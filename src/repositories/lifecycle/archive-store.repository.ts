import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import {
  checkIds,
  checkOrg,
  type ArchiveEntry,
  type ArchivePart,
  type ArchiveStore,
  type StoredPart,
} from '../../adapters/storage/archive-store.adapter.js';
import { rechunk } from '../../adapters/storage/stream-chunks.js';

/** A part is stored in rows of this size, each inserted in its own short transaction. */
const ARCHIVE_ROW_BYTES = 1024 * 1024;

/**
 * The cold archive in the archive_objects table, in 1 MiB rows (SOTTO_ARCHIVE_STORE=database):
 * for several nodes without a shared disk or object store. The interface and the other stores are
 * in adapters/storage/archive-store.adapter.ts.
 */
export class DatabaseArchiveStore implements ArchiveStore {
  readonly kind = 'database' as const;
  constructor(private readonly db: Database) {}

  async put(
    orgId: string,
    archiveId: string,
    part: ArchivePart,
    source: Readable,
    now: Date,
  ): Promise<StoredPart> {
    const { org, id } = checkIds(orgId, archiveId);
    const hash = createHash('sha256');
    let size = 0;
    const ctx = { orgId: org, userId: null };
    // Never one transaction around the whole copy: the source may be a big audio file, and
    // PGlite's one connection would be frozen meanwhile. Each 1 MiB row goes in its own short
    // transaction (the source is read outside any), unreadable until the part is marked complete
    // at the end. A crash leaves an incomplete part without an archive row: the sweep removes it.
    await withTenant(this.db, ctx, (tx) =>
      tx.query('DELETE FROM archive_objects WHERE archive_id = $1 AND part = $2', [id, part]),
    );
    try {
      let seq = 0;
      for await (const row of rechunk(source, ARCHIVE_ROW_BYTES)) {
        hash.update(row);
        size += row.length;
        const n = seq++;
        await withTenant(this.db, ctx, (tx) =>
          tx.query(
            `INSERT INTO archive_objects (archive_id, org_id, part, seq, data, created_at, complete)
             VALUES ($1, $2, $3, $4, $5, $6, false)`,
            [id, org, part, n, row, now],
          ),
        );
      }
      await withTenant(this.db, ctx, (tx) =>
        tx.query('UPDATE archive_objects SET complete = true WHERE archive_id = $1 AND part = $2', [
          id,
          part,
        ]),
      );
    } catch (err) {
      await withTenant(this.db, ctx, (tx) =>
        tx.query('DELETE FROM archive_objects WHERE archive_id = $1 AND part = $2', [id, part]),
      ).catch(() => undefined);
      throw err;
    }
    return { size, sha256: hash.digest('hex') };
  }

  async get(orgId: string, archiveId: string, part: ArchivePart): Promise<Readable | undefined> {
    const { org, id } = checkIds(orgId, archiveId);
    const rows = await withTenant(this.db, { orgId: org, userId: null }, async (tx) => {
      const { rows } = await tx.query<{ seq: number; complete: boolean }>(
        'SELECT seq, complete FROM archive_objects WHERE archive_id = $1 AND part = $2 ORDER BY seq',
        [id, part],
      );
      // A part still being written (or left by a crash) does not exist yet.
      return rows.some((r) => !r.complete) ? [] : rows.map((r) => r.seq);
    });
    if (rows.length === 0) return undefined;
    const db = this.db;
    // Row by row, each in its own short transaction: a big audio part is never held in memory whole.
    return Readable.from(
      (async function* () {
        for (const seq of rows) {
          const data = await withTenant(db, { orgId: org, userId: null }, async (tx) => {
            const res = await tx.query<{ data: Uint8Array }>(
              'SELECT data FROM archive_objects WHERE archive_id = $1 AND part = $2 AND seq = $3',
              [id, part, seq],
            );
            return res.rows[0]?.data;
          });
          if (!data) throw new Error('archive part changed while it was read');
          yield Buffer.from(data);
        }
      })(),
    );
  }

  async remove(orgId: string, archiveId: string): Promise<void> {
    const { org, id } = checkIds(orgId, archiveId);
    await withTenant(this.db, { orgId: org, userId: null }, (tx) =>
      tx.query('DELETE FROM archive_objects WHERE archive_id = $1', [id]),
    );
  }

  async removeOrg(orgId: string): Promise<void> {
    const org = checkOrg(orgId);
    await withTenant(this.db, { orgId: org, userId: null }, (tx) =>
      tx.query('DELETE FROM archive_objects WHERE org_id = $1', [org]),
    );
  }

  async list(): Promise<ArchiveEntry[]> {
    return withSystem(this.db, async (tx) => {
      const { rows } = await tx.query<{ orgId: string; archiveId: string; at: Date }>(
        `SELECT org_id AS "orgId", archive_id AS "archiveId", min(created_at) AS at
           FROM archive_objects GROUP BY org_id, archive_id`,
      );
      return rows.map((r) => ({
        orgId: r.orgId,
        archiveId: r.archiveId,
        writtenAtMs: new Date(r.at).getTime(),
      }));
    });
  }
}
