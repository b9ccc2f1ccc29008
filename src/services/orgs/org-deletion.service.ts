import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import { auditRepository } from '../../repositories/operations/audit.repository.js';
import { deletionRepository } from '../../repositories/orgs/deletion.repository.js';
import type { OrgFiles } from '../../adapters/storage/org-files.adapter.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import type { ReauthService } from '../auth/reauth.service.js';
import { inUserScope, type SessionActor } from '../auth/session.service.js';

/**
 * Organization deletion by its owner (docs/lifecycle.md), in this order:
 *  1. crypto-shredding: the org's data key rows and its KEK file (outside the database) are
 *     destroyed, every session of every member ends and every API and worker token of the org is
 *     deleted (nothing authenticates during the purge), in one transaction holding the org's row
 *     lock. From the moment the KEK file is gone, no copy of the org's ciphertexts — database
 *     backups, archive objects, stray blobs — can be decrypted by anyone, with or without the
 *     master key;
 *  2. purge: the orgs row, and with it every tenant table (ON DELETE CASCADE), then the org's
 *     folders (sealed audio, live spools, exports), the plaintext staged uploads of its pending
 *     jobs (listed before the purge; the staging folder is shared, not per org) and its archive
 *     objects;
 *  3. a receipt on the platform audit chain (the org's own chain is gone with it): org id, who,
 *     when, counts.
 * A crash between steps leaves an org that no longer decrypts; deleting it again finishes the job
 * (every step is idempotent).
 */
export interface OrgDeletionInput {
  confirmSlug: string;
  password: string;
  code?: string | undefined;
}

export interface OrgDeletionReceipt {
  orgId: string;
  deletedAt: Date;
  counts: Record<string, number>;
}

export interface OrgDeletionServiceDeps {
  db: Database;
  keys: Pick<KeyService, 'shredOrg'>;
  audit: Pick<AuditService, 'recordStandalone'>;
  reauth: Pick<ReauthService, 'verify'>;
  files: OrgFiles;
  /** The archive store (archive.service.ts); undefined where no archive is wired. */
  archive: { purgeOrg(orgId: string): Promise<void> } | undefined;
  clock: { now(): Date };
  logger: Pick<Logger, 'info' | 'warn'>;
  /** The shared upload staging folder (plaintext audio waiting for its job). */
  uploads: Pick<UploadFileStore, 'remove'>;
}

export class OrgDeletionService {
  constructor(private readonly deps: OrgDeletionServiceDeps) {}

  async deleteOrg(who: SessionActor, input: OrgDeletionInput): Promise<OrgDeletionReceipt> {
    const orgId = who.orgId;
    if (!orgId || who.role !== 'owner')
      throw new AppError('forbidden', 'Only an owner of the organization can delete it');
    const slug = await inUserScope(this.deps.db, who, (tx) => deletionRepository.orgSlug(tx, orgId));
    if (!slug) throw new AppError('not_found', 'Organization not found');
    if (input.confirmSlug !== slug)
      throw new AppError('bad_request', "Type the organization's slug exactly to confirm its deletion");
    await this.deps.reauth.verify(who, input.password, input.code, 'org.delete');

    const now = this.deps.clock.now();
    // 1. Shred (and end every session) under the org's row lock.
    const { counts, dataKeys, staged } = await withSystem(this.deps.db, async (tx) => {
      // The org's audit chain lock before the row lock, in the order every audit writer takes
      // them, so FOR UPDATE (the row is deleted later) cannot close a cycle with one of them.
      await auditRepository.lockChain(tx, orgId);
      if (!(await deletionRepository.lockOrg(tx, orgId, 'update')))
        throw new AppError('not_found', 'Organization not found');
      const counts = await deletionRepository.orgCounts(tx, orgId);
      await deletionRepository.revokeOrgSessions(tx, orgId, now);
      counts.tokens = await deletionRepository.deleteOrgTokens(tx, orgId);
      const staged = await deletionRepository.orgStagedFiles(tx, orgId);
      const { dataKeys } = await this.deps.keys.shredOrg(tx, orgId);
      return { counts, dataKeys, staged };
    });
    this.deps.logger.info({ orgId, dataKeys }, 'organization keys destroyed');
    // 2. Purge rows, then files and archive objects (all unreadable already).
    await withSystem(this.deps.db, (tx) => deletionRepository.purgeOrg(tx, orgId));
    let files = await this.deps.files.removeOrg(orgId);
    for (const file of staged) {
      await this.deps.uploads.remove(file);
      files++;
    }
    if (this.deps.archive) await this.deps.archive.purgeOrg(orgId);
    // 3. The receipt, on the platform chain.
    const receipt = { orgId, deletedAt: now, counts: { ...counts, dataKeys, files } };
    await this.deps.audit.recordStandalone({
      orgId: null,
      actorId: who.userId,
      actorKind: 'user',
      action: 'org.deleted',
      targetType: 'org',
      targetId: orgId,
      ip: who.ip,
      details: { counts: receipt.counts, cryptoShredded: true, archivePurged: Boolean(this.deps.archive) },
    });
    this.deps.logger.info({ orgId }, 'organization deleted');
    return receipt;
  }
}
