import type { Database } from '../db/database.js';
import { withSystem } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { AppError } from '../domain/errors.js';
import type { Clock } from '../repositories/clock.repository.js';
import { sessionRepository } from '../repositories/session.repository.js';
import { supportGrantRepository } from '../repositories/support-grant.repository.js';
import type { AuditService } from './audit.service.js';
import type { TokenService } from './token.service.js';

const TOUCH_INTERVAL_MS = 60_000;

/**
 * Turns a bearer access token into an Actor. The token proves identity; the live session row
 * decides the rest on every request, so a revoked device or a changed role takes effect at once
 * rather than when the token expires.
 */
export class ActorService {
  constructor(
    private readonly db: Database,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /**
   * @param supportOrgId for platform support users: the org they ask to act in (header
   *   X-Sotto-Org). Honoured only while that org has an active grant; every such request is audited.
   */
  async resolve(token: string, ip: string, supportOrgId?: string): Promise<Actor> {
    const claims = await this.tokens.verify(token);
    const now = this.clock.now();
    return withSystem(this.db, async (tx) => {
      const session = await sessionRepository.findLive(tx, claims.sid, now);
      if (!session || session.userId !== claims.sub)
        throw new AppError('unauthenticated', 'Session has ended');
      if (now.getTime() - session.lastSeenAt.getTime() > TOUCH_INTERVAL_MS) {
        await sessionRepository.touch(tx, session.sessionId, now, ip);
      }
      const base = { userId: session.userId, sessionId: session.sessionId, ip };
      if (session.orgId && session.role) {
        return { ...base, orgId: session.orgId, role: session.role, viaSupportGrant: false };
      }
      // A platform support user: nothing is visible without the customer's grant.
      if (!supportOrgId)
        throw new AppError('forbidden', 'Support access needs an organization (X-Sotto-Org)');
      const grant = await supportGrantRepository.findActive(tx, supportOrgId, now);
      // 404, not 403: an org without a grant is indistinguishable from one that does not exist.
      if (!grant) throw new AppError('not_found', 'Organization not found');
      return { ...base, orgId: supportOrgId, role: 'support', viaSupportGrant: true };
    });
  }
}
