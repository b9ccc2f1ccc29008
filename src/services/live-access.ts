import type { Database } from '../db/database.js';
import { withSystem } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import { actorCan } from '../domain/api-scopes.js';
import type { Clock } from '../repositories/clock.repository.js';
import { apiTokenRepository } from '../repositories/api-token.repository.js';
import { sessionRepository } from '../repositories/session.repository.js';
import { supportGrantRepository } from '../repositories/support-grant.repository.js';

/**
 * Who may still use a live socket. An access token is checked once, at the handshake, but a
 * socket may stay open for hours: LiveService asks this again for every open socket (and when a
 * browser ticket is redeemed), from the database, not from the token.
 */

/** Members see their own recordings; owners, admins and support (through a grant) every one. */
export function visibility(actor: Actor): { ownerId?: string } {
  return actorCan(actor, 'recordings.read_all') ? {} : { ownerId: actor.userId };
}

/**
 * The actor as it is now: the session still live, the role as it is today, a support grant
 * still active. Undefined when the session ended (revoked device, logout); null when the support
 * grant ended (the org is then "not found" to them, as over HTTP).
 */
export function currentActor(db: Database, clock: Clock, a: Actor): Promise<Actor | undefined | null> {
  const now = clock.now();
  return withSystem(db, async (tx) => {
    if (a.apiToken) {
      // An API token instead of a session: still valid, and its user still a member of the org.
      const t = await apiTokenRepository.findForAuth(tx, a.apiToken.id);
      if (!t || t.revokedAt || t.expiresAt.getTime() <= now.getTime()) return undefined;
      if (t.userId !== a.userId || t.userOrgId !== a.orgId || !t.userRole) return undefined;
      return { ...a, role: t.userRole };
    }
    const s = await sessionRepository.findLive(tx, a.sessionId, now);
    if (!s || s.userId !== a.userId) return undefined;
    if (a.viaSupportGrant) {
      if (s.platformRole !== 'support') return undefined;
      if (!(await supportGrantRepository.findActive(tx, a.orgId, now))) return null;
      return { ...a, role: 'support' as const };
    }
    if (s.orgId !== a.orgId || !s.role) return undefined;
    return { ...a, role: s.role };
  });
}
