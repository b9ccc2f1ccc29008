import type { Queryable } from '../../db/database.js';
import type { ExportFileStore } from '../../adapters/storage/export-file.adapter.js';
import { orgExportRepository } from '../../repositories/orgs/org-export.repository.js';

/**
 * A ready (or building) org export is a copy of the org's data: when a recording, an archived
 * item or an account is hard-deleted, the exports that may hold it must not outlive the deletion
 * until their TTL. Deletion services call `inTransaction` inside the transaction that deletes
 * the data (the exports expire with it, reason in `errorCode`), then `removeFiles` after the
 * commit. A file a crash leaves in between belongs to an expired row: the export sweep removes it.
 *
 * A separate small class (not OrgExportService itself) because the deletion services are built
 * before the export service, which depends on them through its sources.
 */
export type ExportInvalidationReason = 'recording_deleted' | 'archive_deleted' | 'account_deleted';

export class OrgExportInvalidation {
  constructor(private readonly files: Pick<ExportFileStore, 'remove'>) {}

  /** Expires the org's ready/building exports (under the caller's tenant transaction); their ids. */
  inTransaction(tx: Queryable, orgId: string, reason: ExportInvalidationReason): Promise<string[]> {
    return orgExportRepository.invalidate(tx, orgId, reason);
  }

  /** Deletes the sealed files of exports expired by `inTransaction` (after its commit). */
  async removeFiles(orgId: string, exportIds: readonly string[]): Promise<void> {
    for (const id of exportIds) await this.files.remove(orgId, id);
  }
}
