import type { Database, Queryable } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import { canAssignRole, type OrgRole } from '../../domain/roles.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { memberRepository, type Member } from '../../repositories/orgs/member.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import { requirePermission } from './org.service.js';

/**
 * Members of an organization and their roles. Rules:
 *  - an owner may give any role to anyone; an admin may make people admins or members but may not
 *    touch an owner nor create one; members manage nobody;
 *  - an organization always keeps at least one owner;
 *  - a change takes effect on the member's next request (the actor's role is read per request).
 */
export class MemberService {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async list(actor: Actor, page: { limit: number; after?: string | undefined }): Promise<Member[]> {
    requirePermission(actor, 'members.read');
    return withTenant(this.db, actor, (tx) => memberRepository.list(tx, actor.orgId, page));
  }

  async changeRole(actor: Actor, memberId: string, role: OrgRole): Promise<Member> {
    requirePermission(actor, 'members.manage');
    return withTenant(this.db, actor, async (tx) => {
      const { target, owners } = await this.findManageable(tx, actor, memberId);
      if (!canAssignRole(actor.role, role))
        throw new AppError('forbidden', `You cannot make members ${role}s`);
      if (target.role === role) return target;
      if (target.role === 'owner') keepAnOwner(owners, target.id);
      const updated = await memberRepository.setRole(tx, actor.orgId, target.id, role);
      if (!updated) throw notFound('Member');
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'member.role_changed',
        targetType: 'user',
        targetId: target.id,
        ip: actor.ip,
        details: { from: target.role, to: role },
      });
      return updated;
    });
  }

  /** Removes a member from the organization; their sessions end with it. */
  async remove(actor: Actor, memberId: string): Promise<void> {
    requirePermission(actor, 'members.manage');
    await withTenant(this.db, actor, async (tx) => {
      const { target, owners } = await this.findManageable(tx, actor, memberId);
      if (target.role === 'owner') keepAnOwner(owners, target.id);
      // Explicit, although deleting the user cascades: a session must never outlive membership,
      // whatever future foreign keys do to the delete.
      const sessions = await memberRepository.revokeSessions(
        tx,
        actor.orgId,
        target.id,
        'member_removed',
        this.clock.now(),
      );
      if (!(await memberRepository.delete(tx, actor.orgId, target.id))) throw notFound('Member');
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'member.removed',
        targetType: 'user',
        targetId: target.id,
        ip: actor.ip,
        // The user row is gone: the log keeps who it was (no secrets: an address and a role).
        details: { email: target.email, role: target.role, sessionsRevoked: sessions },
      });
    });
  }

  /**
   * The target member, if the actor may manage them at all (404 outside the org, 403 for owners
   * unless the actor is one). Locks the org's owners first, then the target, always in that order:
   * two owners demoting each other at once serialise instead of deadlocking or both succeeding.
   */
  private async findManageable(
    tx: Queryable,
    actor: Actor,
    memberId: string,
  ): Promise<{ target: Member; owners: string[] }> {
    const owners = await memberRepository.lockOwners(tx, actor.orgId);
    const target = await memberRepository.lock(tx, actor.orgId, memberId);
    if (!target) throw notFound('Member');
    if (!canAssignRole(actor.role, target.role)) {
      throw new AppError('forbidden', 'Only an owner can change or remove an owner');
    }
    return { target, owners };
  }
}

function keepAnOwner(owners: string[], leavingOwnerId: string): void {
  if (owners.filter((id) => id !== leavingOwnerId).length === 0) {
    throw new AppError('conflict', 'An organization needs at least one owner; make someone else owner first');
  }
}
