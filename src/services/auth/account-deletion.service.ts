import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { PasswordHasher } from '../../crypto/password.js';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { deletionRepository, type AccountDeletionRow } from '../../repositories/orgs/deletion.repository.js';
import type { Mailer } from '../../adapters/network/mail.adapter.js';
import { recordingArchiveRepository as archiveRepo } from '../../repositories/lifecycle/recording-archive.repository.js';
import { sessionRepository } from '../../repositories/auth/session.repository.js';
import type { ArchiveService } from '../lifecycle/archive.service.js';
import type { AuditService } from '../operations/audit.service.js';
import type { OrgExportInvalidation } from '../org-export/org-export-invalidation.js';
import type { ReauthService } from './reauth.service.js';
import type { RecordingDeletionService } from '../recordings/recording-deletion.service.js';
import type { ScheduledTask } from '../lifecycle/scheduler.service.js';
import type { SessionActor } from './session.service.js';

/**
 * Account deletion by the user (DELETE /api/v1/me, docs/lifecycle.md).
 *
 * At once (the request): re-authentication, then in one transaction the password is replaced by
 * an unguessable hash, the second factor and recovery codes go, every session and API token is
 * revoked, and the deletion is queued. Login is refused from that moment.
 *
 * Within 24 hours (the job, `processDue`, run by the scheduler): the user's recordings, active
 * and archived, are transferred to an owner/admin or deleted with receipts, as the org's
 * `departedUserRecordings` policy says (re-listed in the final transaction, so nothing created
 * meanwhile escapes the policy); the org's ready/building exports expire (they list the user); the user row goes (sessions, refresh tokens, recovery codes cascade); a receipt is
 * written to the audit log and e-mailed (what was removed and when, no content).
 *
 * The last owner cannot leave this way: they transfer ownership or delete the organization.
 */
export const ACCOUNT_DELETION_DELAY_MS = 0;

export interface AccountDeletionServiceDeps {
  db: Database;
  hasher: PasswordHasher;
  audit: Pick<AuditService, 'record'>;
  reauth: Pick<ReauthService, 'verify'>;
  recordings: Pick<RecordingDeletionService, 'destroy'>;
  mailer: Mailer;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn'>;
  archive: Pick<ArchiveService, 'destroy'>;
  exports: Pick<OrgExportInvalidation, 'inTransaction' | 'removeFiles'>;
}

export class AccountDeletionService {
  constructor(private readonly deps: AccountDeletionServiceDeps) {}

  /** The maintenance task to register with the scheduler (scheduler.service.ts). */
  tasks(): ScheduledTask[] {
    return [{ name: 'account-deletions', run: async () => void (await this.processDue()) }];
  }

  async request(
    who: SessionActor,
    input: { password: string; code?: string | undefined },
  ): Promise<{ dueAt: Date }> {
    const orgId = who.orgId;
    if (!orgId) throw new AppError('forbidden', 'Platform accounts are removed by the operator');
    const user = await this.deps.reauth.verify(who, input.password, input.code, 'account.delete');
    const unusable = await this.deps.hasher.hash(randomBytes(32).toString('base64'));
    const now = this.deps.clock.now();
    const dueAt = new Date(now.getTime() + ACCOUNT_DELETION_DELAY_MS);
    await withTenant(this.deps.db, { orgId, userId: who.userId }, async (tx) => {
      // Serialises owners leaving at the same time: one of them must stay. No row: the org was
      // deleted after the password check (as org deletion does, an absent org is a 404, not a
      // foreign-key error on the queue insert below).
      if (!(await deletionRepository.lockOrg(tx, orgId, 'no key update')))
        throw new AppError('not_found', 'Organization not found');
      if (user.role === 'owner' && (await deletionRepository.otherOwnerCount(tx, orgId, user.id)) === 0)
        throw new AppError(
          'conflict',
          'You are the last owner of this organization: transfer ownership to another member first, or delete the organization',
        );
      if (
        !(await deletionRepository.queueAccountDeletion(tx, {
          userId: user.id,
          orgId,
          email: user.email,
          now,
          dueAt,
        }))
      )
        throw new AppError('conflict', 'This account is already being deleted');
      await deletionRepository.disableLogin(tx, user.id, unusable, now);
      const sessions = await sessionRepository.revokeAllOfUser(tx, user.id, 'account_deleted', now);
      await deletionRepository.revokeUserApiTokens(tx, user.id, now);
      await this.deps.audit.record(tx, {
        orgId,
        actorId: user.id,
        actorKind: 'user',
        action: 'account.deletion_requested',
        targetType: 'user',
        targetId: user.id,
        ip: who.ip,
        details: { dueAt: dueAt.toISOString(), revokedSessions: sessions },
      });
    });
    return { dueAt };
  }

  /** Completes every due account deletion; returns how many were completed. */
  async processDue(limit = 100): Promise<number> {
    const due = await withSystem(this.deps.db, (tx) =>
      deletionRepository.dueAccountDeletions(tx, this.deps.clock.now(), limit),
    );
    let done = 0;
    for (const d of due) {
      try {
        if (await this.complete(d)) done++;
      } catch (err) {
        // Ids only; the next run tries again.
        this.deps.logger.warn({ userId: d.userId, err: (err as Error).name }, 'account deletion failed');
        await withTenant(this.deps.db, { orgId: d.orgId, userId: null }, (tx) =>
          deletionRepository.bumpAttempts(tx, d.userId),
        ).catch(() => undefined);
      }
    }
    return done;
  }

  private async complete(d: AccountDeletionRow): Promise<boolean> {
    const ctx = { orgId: d.orgId, userId: null };
    const policyOf = async (tx: Queryable) => {
      const policy = await deletionRepository.departedPolicy(tx, d.orgId);
      const successor = await deletionRepository.successorOwner(tx, d.orgId, d.userId);
      return { policy, successor: policy === 'transfer' ? successor : undefined };
    };
    // Recordings and archived items first: transferred in one transaction, or deleted one by
    // one with receipts (files, archive parts, export invalidation included).
    const plan = await withTenant(this.deps.db, ctx, async (tx) => {
      if (!(await deletionRepository.isDeletionPending(tx, d.userId))) return undefined;
      return policyOf(tx);
    });
    if (!plan) return false;
    const sum: ReceiptCounts = {
      transferred: 0,
      archiveTransferred: 0,
      deleted: 0,
      archiveDeleted: 0,
      exportsInvalidated: 0,
    };
    // The final transaction re-lists what the user owns: something created after the request
    // (an upload already in flight) is handled by the policy too, never left to the users-row
    // cascade (no receipt, no blob removal). A few rounds at most; then the next run retries.
    for (let round = 0; round < 3; round++) {
      if (!plan.successor) await this.deleteOwned(d, sum);
      const now = this.deps.clock.now();
      const outcome = await withTenant(this.deps.db, ctx, async (tx) => {
        if (!(await deletionRepository.lockPending(tx, d.userId))) return 'gone' as const;
        const current = await policyOf(tx);
        if (current.successor && current.successor === plan.successor) {
          sum.transferred += await deletionRepository.transferRecordings(tx, d.userId, current.successor);
          sum.archiveTransferred += await archiveRepo.transferOwner(tx, d.userId, current.successor);
        } else if (current.successor !== plan.successor) {
          // The policy or the successor changed meanwhile: plan again.
          plan.policy = current.policy;
          plan.successor = current.successor;
          return 'again' as const;
        } else if (
          (await deletionRepository.recordingIdsOfOwner(tx, d.userId)).length > 0 ||
          (await archiveRepo.idsOfOwner(tx, d.userId)).length > 0
        )
          return 'again' as const;
        // The member list in an export names the user: ready/building exports expire too.
        const expired = await this.deps.exports.inTransaction(tx, d.orgId, 'account_deleted');
        sum.exportsInvalidated += expired.length;
        await deletionRepository.deleteUser(tx, d.userId);
        await deletionRepository.completeAccountDeletion(tx, d.userId, now);
        await this.deps.audit.record(tx, {
          orgId: d.orgId,
          actorId: null,
          actorKind: 'system',
          action: 'account.deleted',
          targetType: 'user',
          targetId: d.userId,
          details: {
            requestedAt: d.requestedAt.toISOString(),
            removed: ['user', 'sessions', 'refreshTokens', 'recoveryCodes', 'totp', 'apiTokens'],
            recordings: {
              policy: plan.policy,
              transferred: sum.transferred,
              ...(plan.successor ? { transferredTo: plan.successor } : {}),
              deleted: sum.deleted,
            },
            archivedRecordings: { transferred: sum.archiveTransferred, deleted: sum.archiveDeleted },
            exportsInvalidated: sum.exportsInvalidated,
          },
        });
        return expired;
      });
      if (outcome === 'gone') return false;
      if (outcome === 'again') continue;
      await this.deps.exports.removeFiles(d.orgId, outcome);
      await this.mailReceipt(d, now, sum);
      return true;
    }
    throw new AppError('conflict', 'the account kept receiving recordings; retried on the next run');
  }

  /** Deletes, with receipts, every recording and archived item the user owns now. */
  private async deleteOwned(d: AccountDeletionRow, sum: ReceiptCounts): Promise<void> {
    const { ids, archiveIds } = await withTenant(
      this.deps.db,
      { orgId: d.orgId, userId: null },
      async (tx) => ({
        ids: await deletionRepository.recordingIdsOfOwner(tx, d.userId),
        archiveIds: await archiveRepo.idsOfOwner(tx, d.userId),
      }),
    );
    const system = { orgId: d.orgId, actorId: null, actorKind: 'system', reason: 'account_deleted' } as const;
    for (const id of ids) {
      try {
        const r = await this.deps.recordings.destroy(system, id, { ownerId: d.userId });
        sum.deleted++;
        sum.exportsInvalidated += r.exportsInvalidated;
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'not_found')) throw err;
      }
    }
    for (const id of archiveIds) {
      try {
        const r = await this.deps.archive.destroy(system, id);
        sum.archiveDeleted++;
        sum.exportsInvalidated += r.exportsInvalidated;
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'not_found')) throw err;
      }
    }
  }

  private async mailReceipt(d: AccountDeletionRow, at: Date, sum: ReceiptCounts): Promise<void> {
    if (!d.email) return;
    if (!this.deps.mailer.enabled) {
      this.deps.logger.warn(
        { userId: d.userId },
        'account deletion receipt not mailed: SMTP is not configured',
      );
      return;
    }
    const lines: string[] = [];
    const deleted = sum.deleted + sum.archiveDeleted;
    const transferred = sum.transferred + sum.archiveTransferred;
    if (deleted > 0 || transferred === 0)
      lines.push(
        `${deleted} recording(s) you owned (${sum.archiveDeleted} of them from the archive), with their transcripts and audio, were deleted.`,
      );
    if (transferred > 0)
      lines.push(
        `${transferred} recording(s) you owned (${sum.archiveTransferred} of them in the archive) were transferred to an administrator of your organization, as its policy requires.`,
      );
    if (sum.exportsInvalidated > 0)
      lines.push(`${sum.exportsInvalidated} prepared export(s) of your organization's data were deleted.`);
    try {
      await this.deps.mailer.send({
        to: d.email,
        subject: 'Your Sotto account has been deleted',
        text: [
          'Your Sotto account has been deleted, as you asked.',
          '',
          `Requested: ${d.requestedAt.toISOString()}`,
          `Completed: ${at.toISOString()}`,
          '',
          'Removed: your login (e-mail address, password, second factor and recovery codes), every session and API token.',
          ...lines,
          '',
          'A receipt of this deletion is kept in your organization’s audit log.',
        ].join('\n'),
      });
    } catch (err) {
      this.deps.logger.warn(
        { userId: d.userId, err: (err as Error).name },
        'account deletion receipt not mailed',
      );
    }
  }
}

interface ReceiptCounts {
  transferred: number;
  archiveTransferred: number;
  deleted: number;
  archiveDeleted: number;
  exportsInvalidated: number;
}
