import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { supportGrantRepository } from '../../repositories/orgs/support-grant.repository.js';
import { looksLikeApiToken, type ApiTokenService } from './api-token.service.js';
import type { SessionService } from './session.service.js';

/**
 * Turns a bearer access token into an Actor inside an organization. SessionService checks the
 * token and the live session (so a revoked device or a changed role takes effect at once); this
 * adds the org: the member's own, or for platform support the one they ask for, only while that
 * org's grant is active.
 */
export class ActorService {
  constructor(
    private readonly db: Database,
    private readonly sessions: SessionService,
    private readonly clock: Clock,
    private readonly apiTokens: ApiTokenService,
  ) {}

  /**
   * @param supportOrgId for platform support users: the org they ask to act in (header
   *   X-Sotto-Org). Every request made through a grant is audited by the HTTP auth plugin.
   */
  async resolve(token: string, ip: string, supportOrgId?: string): Promise<Actor> {
    // A personal API token acts as its user, narrowed by its scopes (never through a grant).
    if (looksLikeApiToken(token)) return this.apiTokens.authenticate(token, ip);
    const session = await this.sessions.authenticate(token, ip);
    const base = { userId: session.userId, sessionId: session.sessionId, ip };
    if (session.orgId && session.role) {
      return { ...base, orgId: session.orgId, role: session.role, viaSupportGrant: false };
    }
    // A platform support user: nothing is visible without the customer's grant.
    if (!supportOrgId) throw new AppError('forbidden', 'Support access needs an organization (X-Sotto-Org)');
    const grant = await withSystem(this.db, (tx) =>
      supportGrantRepository.findActive(tx, supportOrgId, this.clock.now()),
    );
    // 404, not 403: an org without a grant is indistinguishable from one that does not exist.
    if (!grant) throw new AppError('not_found', 'Organization not found');
    return { ...base, orgId: supportOrgId, role: 'support', viaSupportGrant: true };
  }
}
