import type { PasswordHasher } from '../../crypto/password.js';
import type { Database } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { isUniqueViolation, memberRepository } from '../../repositories/orgs/member.repository.js';
import {
  supportGrantRepository,
  type GrantedOrg,
  type SupportGrant,
} from '../../repositories/orgs/support-grant.repository.js';
import type { AuditService } from '../operations/audit.service.js';
import { assertAcceptablePassword } from '../auth/password-strength.js';
import type { SessionActor } from '../auth/session.service.js';
import { requirePermission } from './org.service.js';

export const MAX_GRANT_HOURS = 168;

export type GrantStatus = 'active' | 'expired' | 'revoked';

export interface GrantView extends SupportGrant {
  status: GrantStatus;
}

/**
 * Support access: platform support accounts see an organization only while it has an active,
 * unrevoked grant (ActorService enforces it per request; the auth plugin audits every request).
 */
export class SupportService {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly hasher: PasswordHasher,
    private readonly clock: Clock,
  ) {}

  statusOf(g: SupportGrant, now = this.clock.now()): GrantStatus {
    if (g.revokedAt) return 'revoked';
    return g.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
  }

  async grant(actor: Actor, hours: number): Promise<GrantView> {
    requirePermission(actor, 'support.grant');
    if (!Number.isInteger(hours) || hours < 1 || hours > MAX_GRANT_HOURS) {
      throw new AppError('bad_request', `hours must be a whole number from 1 to ${MAX_GRANT_HOURS}`);
    }
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + hours * 3600 * 1000);
    return withTenant(this.db, actor, async (tx) => {
      const grant = await supportGrantRepository.insert(tx, actor.orgId, actor.userId, now, expiresAt);
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'support.granted',
        targetType: 'support_grant',
        targetId: grant.id,
        ip: actor.ip,
        details: { hours, expiresAt: expiresAt.toISOString() },
      });
      return { ...grant, status: 'active' as const };
    });
  }

  async list(actor: Actor): Promise<GrantView[]> {
    requirePermission(actor, 'support.grant');
    const now = this.clock.now();
    const grants = await withTenant(this.db, actor, (tx) => supportGrantRepository.list(tx, actor.orgId));
    return grants.map((g) => ({ ...g, status: this.statusOf(g, now) }));
  }

  async revoke(actor: Actor, id: string): Promise<void> {
    requirePermission(actor, 'support.grant');
    const now = this.clock.now();
    await withTenant(this.db, actor, async (tx) => {
      const grant = await supportGrantRepository.find(tx, actor.orgId, id);
      if (!grant) throw notFound('Support grant');
      if (!(await supportGrantRepository.revoke(tx, actor.orgId, id, actor.userId, now))) {
        throw new AppError('conflict', 'This grant was already revoked');
      }
      await this.audit.record(tx, {
        orgId: actor.orgId,
        actorId: actor.userId,
        actorKind: 'user',
        action: 'support.revoked',
        targetType: 'support_grant',
        targetId: id,
        ip: actor.ip,
        details: { wasActive: this.statusOf(grant, now) === 'active' },
      });
    });
  }

  /**
   * GET /support/orgs: the organizations a platform support user may enter right now (id, name,
   * grant expiry; nothing else). Audited once, in the platform log, naming the org ids. Listing
   * reads no org's data, so it writes nothing into the orgs' own logs: the panel polls this, and
   * one entry per poll in every granted org's chain would bury what matters there. Each org sees
   * a `support.access` entry for every request support makes in it (the auth plugin, through
   * X-Sotto-Org). Anyone who is not platform support is refused.
   */
  async listGrantedOrgs(who: SessionActor): Promise<GrantedOrg[]> {
    if (who.platformRole !== 'support') throw new AppError('forbidden', 'Only Sotto support uses this');
    const now = this.clock.now();
    return withSystem(this.db, async (tx) => {
      const orgs = await supportGrantRepository.listGrantedOrgs(tx, now);
      await this.audit.record(tx, {
        orgId: null,
        actorId: who.userId,
        actorKind: 'support',
        action: 'support.orgs_listed',
        ip: who.ip,
        details: { orgIds: orgs.map((o) => o.orgId) },
      });
      return orgs;
    });
  }

  /** `sotto admin create-support-user`: a platform account that belongs to no organization. */
  async createSupportUser(input: {
    email: string;
    name: string;
    password: string;
  }): Promise<{ id: string; email: string; name: string; createdAt: Date }> {
    assertAcceptablePassword(input.password, { email: input.email, name: input.name });
    const passwordHash = await this.hasher.hash(input.password);
    return withSystem(this.db, async (tx) => {
      let user;
      try {
        user = await memberRepository.insertSupportUser(tx, {
          email: input.email,
          name: input.name,
          passwordHash,
        });
      } catch (err) {
        if (isUniqueViolation(err))
          throw new AppError('conflict', 'An account with this email already exists');
        throw err;
      }
      await this.audit.record(tx, {
        orgId: null,
        actorId: null,
        actorKind: 'system',
        action: 'support.user_created',
        targetType: 'user',
        targetId: user.id,
        details: { email: user.email },
      });
      return user;
    });
  }
}
