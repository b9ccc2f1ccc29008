import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { PasswordHasher } from '../crypto/password.js';
import type { Database } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import { AppError } from '../domain/errors.js';
import type { Clock } from '../repositories/clock.repository.js';
import { deletionRepository, type AccountDeletionRow } from '../repositories/deletion.repository.js';
import type { Mailer } from '../repositories/mail.repository.js';
import { sessionRepository } from '../repositories/session.repository.js';
import type { AuditService } from './audit.service.js';
import type { ReauthService } from './reauth.service.js';
import type { RecordingDeletionService } from './recording-deletion.service.js';
import type { ScheduledTask } from './scheduler.service.js';
import type { SessionActor } from './session.service.js';

/**
 * Account deletion by the user (DELETE /api/v1/me, docs/lifecycle.md).
 *
 * At once (the request): re-authentication, then in one transaction the password is replaced by
 * an unguessable hash, the second factor and recovery codes go, every session and API token is
 * revoked, and the deletion is queued. Login is refused from that moment.
 *
 * Within 24 hours (the job, `processDue`, run by the scheduler): the user's recordings are
 * transferred to an owner/admin or deleted with receipts, as the org's `departedUserRecordings`
 * policy says; the user row goes (sessions, refresh tokens, recovery codes cascade); a receipt is
 * written to the audit log and e-mailed (what was removed and when, no content).
 *
 * The last owner cannot leave this way: they transfer ownership or delete the organization.
 */
export const ACCOUNT_DELETION_DELAY_MS = 0;

export class AccountDeletionService {
  constructor(
    private readonly db: Database,
    private readonly hasher: PasswordHasher,
    private readonly audit: Pick<AuditService, 'record'>,
    private readonly reauth: Pick<ReauthService, 'verify'>,
    private readonly recordings: Pick<RecordingDeletionService, 'destroy'>,
    private readonly mailer: Mailer,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
  ) {}

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
    const user = await this.reauth.verify(who, input.password, input.code, 'account.delete');
    const unusable = await this.hasher.hash(randomBytes(32).toString('base64'));
    const now = this.clock.now();
    const dueAt = new Date(now.getTime() + ACCOUNT_DELETION_DELAY_MS);
    await withTenant(this.db, { orgId, userId: who.userId }, async (tx) => {
      // Serialises owners leaving at the same time: one of them must stay.
      await deletionRepository.lockOrg(tx, orgId);
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
      await this.audit.record(tx, {
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
    const due = await withSystem(this.db, (tx) =>
      deletionRepository.dueAccountDeletions(tx, this.clock.now(), limit),
    );
    let done = 0;
    for (const d of due) {
      try {
        if (await this.complete(d)) done++;
      } catch (err) {
        // Ids only; the next run tries again.
        this.logger.warn({ userId: d.userId, err: (err as Error).name }, 'account deletion failed');
        await withTenant(this.db, { orgId: d.orgId, userId: null }, (tx) =>
          deletionRepository.bumpAttempts(tx, d.userId),
        ).catch(() => undefined);
      }
    }
    return done;
  }

  private async complete(d: AccountDeletionRow): Promise<boolean> {
    const ctx = { orgId: d.orgId, userId: null };
    // Recordings first: transferred in one transaction, or deleted one by one with receipts.
    const plan = await withTenant(this.db, ctx, async (tx) => {
      if (!(await deletionRepository.isDeletionPending(tx, d.userId))) return undefined;
      const policy = await deletionRepository.departedPolicy(tx, d.orgId);
      const successor = await deletionRepository.successorOwner(tx, d.orgId, d.userId);
      if (policy === 'transfer' && successor) {
        const transferred = await deletionRepository.transferRecordings(tx, d.userId, successor);
        return { policy, successor, transferred, ids: [] as string[] };
      }
      return {
        policy,
        successor: undefined,
        transferred: 0,
        ids: await deletionRepository.recordingIdsOfOwner(tx, d.userId),
      };
    });
    if (!plan) return false;
    let deleted = 0;
    for (const id of plan.ids) {
      try {
        await this.recordings.destroy(
          { orgId: d.orgId, actorId: null, actorKind: 'system', reason: 'account_deleted' },
          id,
          { ownerId: d.userId },
        );
        deleted++;
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'not_found')) throw err;
      }
    }
    const now = this.clock.now();
    const completed = await withTenant(this.db, ctx, async (tx) => {
      if (!(await deletionRepository.lockPending(tx, d.userId))) return false;
      await deletionRepository.deleteUser(tx, d.userId);
      await deletionRepository.completeAccountDeletion(tx, d.userId, now);
      await this.audit.record(tx, {
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
            transferred: plan.transferred,
            ...(plan.successor ? { transferredTo: plan.successor } : {}),
            deleted,
          },
        },
      });
      return true;
    });
    if (completed) await this.mailReceipt(d, now, plan.transferred, deleted);
    return completed;
  }

  private async mailReceipt(
    d: AccountDeletionRow,
    at: Date,
    transferred: number,
    deleted: number,
  ): Promise<void> {
    if (!d.email) return;
    if (!this.mailer.enabled) {
      this.logger.warn({ userId: d.userId }, 'account deletion receipt not mailed: SMTP is not configured');
      return;
    }
    const recordings =
      deleted > 0 || transferred === 0
        ? `${deleted} recording(s) you owned, with their transcripts and audio, were deleted.`
        : `${transferred} recording(s) you owned were transferred to an administrator of your organization, as its policy requires.`;
    try {
      await this.mailer.send({
        to: d.email,
        subject: 'Your Sotto account has been deleted',
        text: [
          'Your Sotto account has been deleted, as you asked.',
          '',
          `Requested: ${d.requestedAt.toISOString()}`,
          `Completed: ${at.toISOString()}`,
          '',
          'Removed: your login (e-mail address, password, second factor and recovery codes), every session and API token.',
          recordings,
          '',
          'A receipt of this deletion is kept in your organization’s audit log.',
        ].join('\n'),
      });
    } catch (err) {
      this.logger.warn({ userId: d.userId, err: (err as Error).name }, 'account deletion receipt not mailed');
    }
  }
}
