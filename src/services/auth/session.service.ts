import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { randomToken, sha256Hex } from '../../crypto/random.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { OrgRole } from '../../domain/roles.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { deletionRepository } from '../../repositories/orgs/deletion.repository.js';
import { refreshTokenRepository } from '../../repositories/auth/refresh-token.repository.js';
import { sessionRepository, type DeviceSession } from '../../repositories/auth/session.repository.js';
import { accountActorKind, type AuditService } from '../operations/audit.service.js';
import type { TokenService } from './token.service.js';

const DAY_MS = 24 * 3600 * 1000;
const TOUCH_INTERVAL_MS = 60_000;
const USER_AGENT_MAX = 512;

/**
 * Who holds a live session, whatever their kind. Unlike the Actor (which acts inside one org),
 * this also covers platform support accounts outside any grant: everyone may manage their own
 * sessions, password and second factor.
 */
export interface SessionActor {
  userId: string;
  sessionId: string;
  orgId: string | null;
  role: OrgRole | null;
  platformRole: 'support' | null;
  ip: string;
}

export interface ClientMeta {
  ip: string;
  userAgent: string;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  /** When the session ends at the latest (refresh cookie lifetime). */
  sessionExpiresAt: Date;
}

export interface Device extends DeviceSession {
  current: boolean;
}

/**
 * Runs `fn` in a user's own scope: the tenant transaction of their org, or the system context
 * for platform support accounts, whose rows carry no org and are invisible to the tenant role.
 */
export function inUserScope<T>(
  db: Database,
  who: { orgId: string | null; userId: string },
  fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  return who.orgId ? withTenant(db, { orgId: who.orgId, userId: who.userId }, fn) : withSystem(db, fn);
}

type RefreshOutcome =
  | { kind: 'ok'; userId: string; orgId: string | null; sessionId: string; token: string; expiresAt: Date }
  | { kind: 'invalid' | 'reuse' | 'expired' };

/**
 * Login sessions (one per device) and their refresh-token families. A refresh token is opaque,
 * random, stored as SHA-256 and good for one exchange: the exchange marks it rotated and issues
 * the next. Presenting a rotated token again means someone kept a copy, so the whole family
 * (the session) is revoked.
 */
export class SessionService {
  constructor(
    private readonly db: Database,
    private readonly tokens: TokenService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly opts: { absoluteDays: number; idleDays: number },
  ) {}

  get accessTokenTtl(): number {
    return this.tokens.ttlSeconds;
  }

  /** Opens a session with its first refresh token, inside the caller's (user-scope) transaction. */
  async open(
    tx: Queryable,
    user: { id: string; orgId: string | null },
    meta: ClientMeta,
  ): Promise<{ sessionId: string; refreshToken: string; expiresAt: Date }> {
    // Every way in (password, SSO, invitation) ends here: an account whose deletion was asked for
    // gets no new session, so nothing can be created under it while the deletion is pending.
    if (await deletionRepository.isDeletionPending(tx, user.id))
      throw new AppError('invalid_credentials', 'This account is being deleted');
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.opts.absoluteDays * DAY_MS);
    const sessionId = await sessionRepository.create(tx, {
      orgId: user.orgId,
      userId: user.id,
      userAgent: meta.userAgent.slice(0, USER_AGENT_MAX),
      ip: meta.ip,
      now,
      expiresAt,
    });
    const refreshToken = randomToken();
    await refreshTokenRepository.insert(tx, {
      sessionId,
      orgId: user.orgId,
      tokenHash: sha256Hex(refreshToken),
      createdAt: now,
    });
    return { sessionId, refreshToken, expiresAt };
  }

  async accessToken(user: { id: string; orgId: string | null }, sessionId: string): Promise<string> {
    return this.tokens.issue({ sub: user.id, sid: sessionId, org: user.orgId });
  }

  async refresh(refreshToken: string, meta: ClientMeta): Promise<TokenPair> {
    const now = this.clock.now();
    const outcome = await withSystem(this.db, async (tx): Promise<RefreshOutcome> => {
      const row = await refreshTokenRepository.findForUpdate(tx, sha256Hex(refreshToken));
      if (!row) return { kind: 'invalid' };
      if (row.rotatedAt) {
        if (row.sessionRevokedAt) return { kind: 'invalid' };
        await sessionRepository.revoke(tx, row.sessionId, 'refresh_reuse', now);
        // The presenter may be the thief or the victim: record who owned the family, not who asked.
        await this.audit.record(tx, {
          orgId: row.orgId,
          actorId: null,
          actorKind: 'anonymous',
          action: 'auth.refresh_reuse',
          targetType: 'session',
          targetId: row.sessionId,
          ip: meta.ip,
          details: { userId: row.userId },
        });
        return { kind: 'reuse' };
      }
      if (row.sessionRevokedAt) return { kind: 'invalid' };
      if (row.sessionExpiresAt.getTime() <= now.getTime()) return { kind: 'expired' };
      // The newest token of a family was issued at the last refresh: its age is the idle time.
      if (now.getTime() - row.createdAt.getTime() > this.opts.idleDays * DAY_MS) {
        await sessionRepository.revoke(tx, row.sessionId, 'idle', now);
        return { kind: 'expired' };
      }
      await refreshTokenRepository.markRotated(tx, row.id, now);
      const next = randomToken();
      await refreshTokenRepository.insert(tx, {
        sessionId: row.sessionId,
        orgId: row.orgId,
        tokenHash: sha256Hex(next),
        createdAt: now,
      });
      await sessionRepository.touch(tx, row.sessionId, now, meta.ip);
      return {
        kind: 'ok',
        userId: row.userId,
        orgId: row.orgId,
        sessionId: row.sessionId,
        token: next,
        expiresAt: row.sessionExpiresAt,
      };
    });
    if (outcome.kind === 'expired') throw new AppError('unauthenticated', 'Session expired; log in again');
    if (outcome.kind !== 'ok') throw new AppError('unauthenticated', 'Invalid refresh token');
    return {
      accessToken: await this.accessToken({ id: outcome.userId, orgId: outcome.orgId }, outcome.sessionId),
      refreshToken: outcome.token,
      expiresIn: this.accessTokenTtl,
      sessionExpiresAt: outcome.expiresAt,
    };
  }

  /** Verifies an access token and the live session behind it. */
  async authenticate(accessToken: string, ip: string): Promise<SessionActor> {
    const claims = await this.tokens.verify(accessToken);
    const now = this.clock.now();
    return withSystem(this.db, async (tx) => {
      const s = await sessionRepository.findLive(tx, claims.sid, now);
      if (!s || s.userId !== claims.sub) throw new AppError('unauthenticated', 'Session has ended');
      if (now.getTime() - s.lastSeenAt.getTime() > TOUCH_INTERVAL_MS) {
        await sessionRepository.touch(tx, s.sessionId, now, ip);
      }
      return {
        userId: s.userId,
        sessionId: s.sessionId,
        orgId: s.orgId,
        role: s.role,
        platformRole: s.platformRole,
        ip,
      };
    });
  }

  /** Logout with a refresh token (cookie or body): ends its session. Unknown tokens end nothing. */
  async logoutByRefreshToken(refreshToken: string, ip: string): Promise<void> {
    const now = this.clock.now();
    await withSystem(this.db, async (tx) => {
      const row = await refreshTokenRepository.findForUpdate(tx, sha256Hex(refreshToken));
      if (!row || row.sessionRevokedAt) return;
      await sessionRepository.revoke(tx, row.sessionId, 'logout', now);
      await this.audit.record(tx, {
        orgId: row.orgId,
        actorId: row.userId,
        actorKind: accountActorKind(row.orgId),
        action: 'auth.logout',
        targetType: 'session',
        targetId: row.sessionId,
        ip,
      });
    });
  }

  async logout(who: SessionActor): Promise<void> {
    await this.revokeDevice(who, who.sessionId, 'logout');
  }

  async listDevices(who: SessionActor): Promise<Device[]> {
    const now = this.clock.now();
    const rows = await inUserScope(this.db, who, (tx) => sessionRepository.listLive(tx, who.userId, now));
    return rows.map((r) => ({ ...r, current: r.id === who.sessionId }));
  }

  /** Ends one of my sessions. Another user's (or org's) session id is indistinguishable from none. */
  async revokeDevice(who: SessionActor, sessionId: string, reason = 'revoked'): Promise<void> {
    const now = this.clock.now();
    const done = await inUserScope(this.db, who, async (tx) => {
      if (!(await sessionRepository.revokeOwn(tx, who.userId, sessionId, reason, now))) return false;
      await this.audit.record(tx, {
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: reason === 'logout' ? 'auth.logout' : 'auth.device_revoked',
        targetType: 'session',
        targetId: sessionId,
        ip: who.ip,
        details: { current: sessionId === who.sessionId },
      });
      return true;
    });
    if (!done) throw notFound('Device');
  }

  /** Ends all of my sessions, the current one included. */
  async revokeAll(who: SessionActor): Promise<number> {
    const now = this.clock.now();
    return inUserScope(this.db, who, async (tx) => {
      const n = await sessionRepository.revokeAllOfUser(tx, who.userId, 'revoked_all', now);
      await this.audit.record(tx, {
        orgId: who.orgId,
        actorId: who.userId,
        actorKind: accountActorKind(who.orgId),
        action: 'auth.devices_revoked_all',
        ip: who.ip,
        details: { sessions: n },
      });
      return n;
    });
  }
}
